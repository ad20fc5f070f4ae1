// SPDX-License-Identifier: Apache-2.0
// Known-answer vectors built into the binary for `espd run --selftest` (full sets: Tests/ESPTests/Vectors).
// One per HMAC (SHA-1, SHA-256, SHA-384, SHA-512), so a wrong digest or truncation fails the selftest.

/// One ESP packet with known keys, sequence number, IV and padding, and the exact bytes it must seal to.
struct KnownAnswer {
  let source: String
  let algorithm: ESPAlgorithm
  let key: String
  let authKey: String
  let spi: UInt32
  let sequenceNumber: UInt64
  let esn: Bool
  let iv: String
  let payload: String
  let padLength: Int
  let nextHeader: UInt8
  let packet: String
  /// False where the source gives no ICV (RFC 3602 is encryption only): compare all but the ICV.
  let checksICV: Bool
}

extension KnownAnswer {
  static let all: [KnownAnswer] = [
    KnownAnswer(
      source: "RFC 7634 Appendix A", algorithm: .chacha20poly1305,
      key: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3", authKey: "",
      spi: 0x01020304, sequenceNumber: 0x5, esn: false, iv: "1011121314151617",
      payload:
        "45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec100007362708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
      padLength: 2, nextHeader: 4,
      packet:
        "0102030400000005101112131415161724039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c614ee8099d52844eb61aa95dfab4c02f72aa71e7c4c4f64c9befe2facc638e8f3cbec163fac469b502773f6fb94e664da9165b82829f641e076aaa8266b7fb0f7b11b369907e1ad43",
      checksICV: true),
    KnownAnswer(
      source: "draft-mcgrew-gcm-test-01 §4 case 5 (AES-128-GCM, ESN)", algorithm: .aes128gcm16,
      key: "3de09874b388e6491988d0c3607eae1f57690e43", authKey: "",
      spi: 0x42f67e3f, sequenceNumber: 0x1010101010101010, esn: true, iv: "4e280000a2fca1a3",
      payload:
        "4500003c99c300008001cb7c40679318010101010800085c020043006162636465666768696a6b6c6d6e6f7071727374757677616263646566676869",
      padLength: 2, nextHeader: 1,
      packet:
        "42f67e3f101010104e280000a2fca1a3fba2caa4853cf9f0f22cb10d86dd83b0fec75691cf1a04b00d1138ec9c35791765acbd8701ad79845bf9fe3fba487bc91755e6662b4c8d0d1f5e22739530320ae0d731cc978ecafaeae88f00e80d6e48",
      checksICV: true),
    KnownAnswer(
      source: "draft-mcgrew-gcm-test-01 §4 case 9 (AES-256-GCM, ESN)", algorithm: .aes256gcm16,
      key: "abbccddef00112233445566778899aababbccddef00112233445566778899aab73616c74", authKey: "",
      spi: 0x17405e67, sequenceNumber: 0x156f3126dd0db99b, esn: true, iv: "616e640169766563",
      payload: "45080028732c00004006e9f90a0106120a01038f06b88023dd6bafbecb71260250101f646d54",
      padLength: 0, nextHeader: 1,
      packet:
        "17405e67dd0db99b616e640169766563f2d69ecdbd5a0d5b8d5ef38bad4da58d1f278fde98ef67549d524a3018d9a57ff4d3a31ce673119e451626c2415771e3b7eebca614c89b35",
      checksICV: true),
    KnownAnswer(
      source: "RFC 3602 §4 case 5 (AES-128-CBC; no ICV in the source)", algorithm: .aes128sha256,
      key: "90d382b410eeba7ad938c46cec1a82bf",
      authKey: "0000000000000000000000000000000000000000000000000000000000000000",
      spi: 0x00004321, sequenceNumber: 0x1, esn: false, iv: "e96e8c08ab465763fd098d45dd3ff893",
      payload:
        "08000ebda70a00008e9c083db95b070008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
      padLength: 14, nextHeader: 1,
      packet:
        "0000432100000001e96e8c08ab465763fd098d45dd3ff893f663c25d325c18c6a9453e194e120849a4870b66cc6b9965330013b4898dc856a4699e523a55db080b59ec3a8e4b7e52775b07d1db34ed9c538ab50c551b874aa269add047ad2d5913ac19b7cfbad4a6",
      checksICV: false),
    KnownAnswer(
      source: "scapy 2.8 (independent ESP implementation): AES-128-CBC + HMAC-SHA-256-128, ESN",
      algorithm: .aes128sha256,
      key: "101112131415161718191a1b1c1d1e1f",
      authKey: "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
      spi: 0x5ca70002, sequenceNumber: 0x100000005, esn: true, iv: "a2a3a4a5a6a7a8a9aaabacadaeafb0b1",
      payload:
        "450000440003000040111454c633640acb0071140fa313880030f87e000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627",
      padLength: 10, nextHeader: 4,
      packet:
        "5ca7000200000005a2a3a4a5a6a7a8a9aaabacadaeafb0b1afff175a80df404ad52b45acd119cd02ed33c5dda078d8698ca20ca6ea7d0622c1a1fd6117019389b56a0138981527770f9ed5d499f8ac6eea0e9953b20d7c77dc5722cf96d9e72eae02286f3f9c7fc0107db9a04ec2bb4e196a99b13653d2c5",
      checksICV: true),
    KnownAnswer(
      source: "scapy 2.8 (independent ESP implementation): AES-128-CBC + HMAC-SHA-1-96, ESN",
      algorithm: .aes128sha1,
      key: "101112131415161718191a1b1c1d1e1f",
      authKey:
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3",
      spi: 0x5ca70013, sequenceNumber: 0x100000007, esn: true, iv: "b3b4b5b6b7b8b9babbbcbdbebfc0c1c2",
      payload:
        "60000000001d114020010db8000a0000000000000000001020010db8000b000000000000000000200fb41388001d125d000102030405060708090a0b0c0d0e0f1011121314",
      padLength: 9, nextHeader: 41,
      packet:
        "5ca7001300000007b3b4b5b6b7b8b9babbbcbdbebfc0c1c226ef94e1fcca44f68172d58658a3a81cf25abc3c6b067d1cc41d8ac8f9b938a634dc36e5d5aaa344e4aa026eec3c0921399a1b6b23495c2a63278898bb012bc41d6d48269bd44359139dc742507bfe1d76e718150d525da9ca15afdd",
      checksICV: true),
    KnownAnswer(
      source: "scapy 2.8 (independent ESP implementation): AES-256-CBC + HMAC-SHA-384-192, ESN",
      algorithm: .aes256sha384,
      key: "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f",
      authKey:
        "d0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
      spi: 0x5ca70018, sequenceNumber: 0x180000000, esn: true, iv: "b8b9babbbcbdbebfc0c1c2c3c4c5c6c7",
      payload:
        "45000023001900004011145fc633640acb0071140fb91388000f6a3300010203040506",
      padLength: 11, nextHeader: 4,
      packet:
        "5ca7001880000000b8b9babbbcbdbebfc0c1c2c3c4c5c6c75e840073467662828a4e03deebfe0f11f939624ec8fc8503aedab2df9c4ec2b543cbc97e71a00f84e3fa6686d68731c61ace1dc5849a3494c495d850daed44dce2e3fd81e1f711fb",
      checksICV: true),
    KnownAnswer(
      source: "scapy 2.8 (independent ESP implementation): AES-256-CBC + HMAC-SHA-512-256, ESN",
      algorithm: .aes256sha512,
      key: "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f",
      authKey:
        "303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f",
      spi: 0x5ca7001b, sequenceNumber: 0x7fffffff00000003, esn: true, iv: "bbbcbdbebfc0c1c2c3c4c5c6c7c8c9ca",
      payload:
        "600000000025114020010db8000a0000000000000000001020010db8000b000000000000000000200fbc13880025ade4000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c",
      padLength: 1, nextHeader: 41,
      packet:
        "5ca7001b00000003bbbcbdbebfc0c1c2c3c4c5c6c7c8c9ca802d5fe91c95f989195c0ea564c71cb24770cd8670d8617ed9a6c6da05007e15a73709bda454b9b5276823b2d6e34209918055fbb7005b1366b00b76c7f3799c49f79d150aba208a8cfae10bb9a70e718c9468a945e1c758541e48a5a468212da809b52a55f5cb7f342195b9262a1df7",
      checksICV: true),
  ]
}
