// SPDX-License-Identifier: Apache-2.0
// The transform table: sizes per RFC, Wireshark names, `ip xfrm` aliases, and the HMACs themselves.
import Testing

@testable import ESP

@Suite struct ESPAlgorithmTests {
  /// Sizes per transform: key, auth key, IV, ICV, padding block (RFC 2404, 3602, 4106, 4868, 7634).
  @Test func sizes() {
    typealias Row = (key: Int, authKey: Int, iv: Int, icv: Int, block: Int)
    let table: [ESPAlgorithm: Row] = [
      .aes128gcm16: (20, 0, 8, 16, 4), .aes192gcm16: (28, 0, 8, 16, 4), .aes256gcm16: (36, 0, 8, 16, 4),
      .chacha20poly1305: (36, 0, 8, 16, 4),
      .aes128sha1: (16, 20, 16, 12, 16), .aes256sha1: (32, 20, 16, 12, 16),
      .aes128sha256: (16, 32, 16, 16, 16), .aes256sha256: (32, 32, 16, 16, 16),
      .aes128sha384: (16, 48, 16, 24, 16), .aes256sha384: (32, 48, 16, 24, 16),
      .aes256sha512: (32, 64, 16, 32, 16), .nullsha256: (0, 32, 0, 16, 4),
    ]
    #expect(table.count == ESPAlgorithm.allCases.count)
    for alg in ESPAlgorithm.allCases {
      let row = table[alg]!
      #expect(alg.keyLength == row.key, "\(alg)")
      #expect(alg.authKeyLength == row.authKey, "\(alg)")
      #expect(alg.ivLength == row.iv, "\(alg)")
      #expect(alg.icvLength == row.icv, "\(alg)")
      #expect(alg.blockSize == row.block, "\(alg)")
      #expect(alg.isAEAD == (row.authKey == 0), "\(alg)")
      // The fixed tailroom holds the worst case of every transform.
      #expect(alg.blockSize - 1 + ESPConstants.trailerSize + alg.icvLength <= ESPLayout.tailroom, "\(alg)")
      #expect(alg.icvLength <= ESPConstants.maxICVLength, "\(alg)")
    }
    #expect(ESPAlgorithm.allCases.map(\.icvLength).max() == ESPConstants.maxICVLength)
  }

  /// The names of Wireshark's esp_sa table (`esp_*_type_vals` in epan/dissectors/packet-esp.c).
  @Test func wiresharkNames() {
    #expect(ESPAlgorithm.aes128sha1.wiresharkAuthentication == "HMAC-SHA-1-96 [RFC2404]")
    #expect(ESPAlgorithm.aes256sha1.wiresharkAuthentication == "HMAC-SHA-1-96 [RFC2404]")
    #expect(ESPAlgorithm.aes256sha256.wiresharkAuthentication == "HMAC-SHA-256-128 [RFC4868]")
    #expect(ESPAlgorithm.aes128sha384.wiresharkAuthentication == "HMAC-SHA-384-192 [RFC4868]")
    #expect(ESPAlgorithm.aes256sha512.wiresharkAuthentication == "HMAC-SHA-512-256 [RFC4868]")
    #expect(ESPAlgorithm.aes128gcm16.wiresharkAuthentication == "NULL")
    for alg in ESPAlgorithm.allCases where alg.isCBC {
      #expect(alg.wiresharkEncryption == "AES-CBC [RFC3602]", "\(alg)")
    }
    #expect(ESPAlgorithm.nullsha256.wiresharkEncryption == "NULL")
  }

  /// `ip xfrm` names: the key length picks the AES size, the auth key length the HMAC for `cbc(aes)`.
  @Test func ipXfrmNames() {
    let cases: [(String, Int, Int?, ESPAlgorithm?)] = [
      // Unchanged from before the SHA-1/384/512 transforms.
      ("cbc(aes)", 16, 32, .aes128sha256), ("cbc(aes)", 32, 32, .aes256sha256),
      ("cbc(aes)", 16, nil, .aes128sha256), ("cbc(aes)", 32, nil, .aes256sha256),
      ("cbc(aes)", 24, 32, .aes128sha256), ("cbc(aes)", 16, 31, .aes128sha256),
      ("cbc(aes)+hmac(sha256)", 32, 20, .aes256sha256), ("hmac(sha256)", 0, 32, .nullsha256),
      ("ecb(cipher_null)", 0, 32, .nullsha256), ("rfc4106(gcm(aes))", 36, nil, .aes256gcm16),
      ("rfc4106(gcm(aes))", 24, nil, .aes192gcm16), ("rfc4106(gcm(aes))", 20, nil, .aes128gcm16),
      ("RFC7539ESP(chacha20,poly1305)", 36, nil, .chacha20poly1305), ("AES128-SHA256", 0, nil, .aes128sha256),
      // The HMAC told by the auth key's length (RFC 2404 §3, RFC 4868 §2.1.1).
      ("cbc(aes)", 16, 20, .aes128sha1), ("cbc(aes)", 32, 20, .aes256sha1),
      ("cbc(aes)", 16, 48, .aes128sha384), ("CBC(AES)", 32, 48, .aes256sha384),
      ("cbc(aes)", 32, 64, .aes256sha512), ("cbc(aes)", 16, 64, .aes256sha512),
      // Or named.
      ("cbc(aes)+hmac(sha1)", 16, 32, .aes128sha1), ("cbc(aes)+hmac(sha1)", 32, nil, .aes256sha1),
      ("cbc(aes)+hmac(sha384)", 16, 20, .aes128sha384), ("cbc(aes)+hmac(sha384)", 32, 48, .aes256sha384),
      ("cbc(aes)+hmac(sha512)", 32, 64, .aes256sha512), ("aes256-sha1", 16, 64, .aes256sha1),
      // Unknown.
      ("hmac(sha1)", 0, 20, nil), ("hmac(md5)", 0, 16, nil), ("aes128-sha512", 16, 64, nil),
    ]
    for (name, keyLength, authKeyLength, expected) in cases {
      #expect(
        ESPAlgorithm.named(name, keyLength: keyLength, authKeyLength: authKeyLength) == expected,
        "\(name) key \(keyLength) auth_key \(authKeyLength.map(String.init) ?? "absent")")
    }
  }

  /// The per-packet HMACs, untruncated, against RFC 2202 §3 (SHA-1) and RFC 4231 §4.2-4.3 (SHA-2)
  /// test cases 1 and 2.
  @Test(arguments: ESPIntegrity.allCases)
  func hmacKnownAnswers(_ integrity: ESPIntegrity) {
    let hiThere: [ESPIntegrity: String] = [
      .sha1: "b617318655057264e28bc0b6fb378c8ef146be00",
      .sha256: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      .sha384: "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
      .sha512:
        "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
    ]
    let jefe: [ESPIntegrity: String] = [
      .sha1: "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
      .sha256: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      .sha384: "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
      .sha512:
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
    ]
    let cases: [([UInt8], [UInt8], String)] = [
      ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8), hiThere[integrity]!),
      (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8), jefe[integrity]!),
    ]
    let stride = HMACState.stride(integrity)
    for (key, data, expected) in cases {
      let states = HMACState.derive(integrity, key: key, stride: stride)
      defer { states.deallocate() }
      // Twice: the second run must restart from the same precomputed states.
      for _ in 0..<2 {
        let digest = data.withUnsafeBytes { d in
          let p = HMACState.authenticate(
            integrity, states: states, stride: stride, data: d.baseAddress!, length: d.count, trailer: nil)
          return Array(UnsafeRawBufferPointer(start: p, count: integrity.digestLength))
        }
        #expect(Hex.encode(digest) == expected, "\(integrity)")
      }
    }
  }
}
