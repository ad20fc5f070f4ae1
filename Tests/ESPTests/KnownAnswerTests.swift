// SPDX-License-Identifier: Apache-2.0
// Known-answer tests: ESP packets from RFC 7634 App. A, draft-mcgrew-gcm-test-01, scapy (every HMAC); RFC 3602.
import Testing

@testable import ESP

@Suite struct KnownAnswerTests {
  static let packetVectors: [PacketVector] =
    Vectors.load("rfc7634.json") + Vectors.load("gcm-mcgrew.json") + Vectors.load("scapy-cbc-hmac.json")

  @Test func vectorFilesAreLoaded() {
    #expect(Vectors.load("rfc7634.json", as: PacketVector.self).count == 1)
    #expect(Vectors.load("gcm-mcgrew.json", as: PacketVector.self).count >= 16)
    #expect(Vectors.load("scapy-cbc-hmac.json", as: PacketVector.self).count >= 29)
    // Every transform has whole-packet vectors (RFC 7634, draft-mcgrew-gcm-test-01 or scapy).
    let covered = Set(Self.packetVectors.map(\.algorithm))
    #expect(covered == Set(ESPAlgorithm.allCases), "no vectors for \(Set(ESPAlgorithm.allCases).subtracting(covered))")
    #expect(Vectors.load("rfc3602.json", as: CBCVector.self).count == 8)
  }

  /// Seal with the vector's IV and padding: the bytes must match exactly.
  @Test(arguments: packetVectors)
  func sealMatches(_ v: PacketVector) throws {
    let alg = v.algorithm
    let slot = Slot()
    var packet = slot.packet(hex(v.payload))
    let expected = hex(v.packet)
    if v.spiValue == 0 {
      // SPI 0 is reserved (RFC 4303 §2.1), so no SA accepts it; the vector still checks the AEAD.
      let ctx = try AEADContext(algorithm: alg, key: hex(v.key), authKey: hex(v.auth_key ?? ""), encrypt: true)
      let text = hex(v.payload) + hex(v.padding) + [UInt8(v.padding.count / 2), v.next_header]
      let buffer = slot.packet(
        Array(expected[0..<(8 + alg.ivLength)]) + text + [UInt8](repeating: 0, count: alg.icvLength))
      let high: UInt32? = v.esn ? UInt32(v.seq >> 32) : nil
      let ok = ctx.seal(
        header: buffer.data, sequenceHigh: high, iv: buffer.data + 8, text: buffer.data + 8 + alg.ivLength,
        length: text.count, icv: buffer.data + 8 + alg.ivLength + text.count)
      #expect(ok)
      #expect(Array(buffer.bytes) == expected)
      return
    }
    let out = try OutboundSA(
      spi: v.spiValue, algorithm: alg, key: hex(v.key), authKey: hex(v.auth_key ?? ""), esn: v.esn,
      sequenceNumber: v.seq - 1)
    let iv = hex(v.iv)
    let seq = try iv.withUnsafeBytes { ivBytes throws(ESPError) in
      try out.seal(&packet, nextHeader: v.next_header, padLength: v.padding.count / 2, explicitIV: ivBytes)
    }
    #expect(seq == v.seq)
    #expect(Hex.encode(packet.bytes) == v.packet)
  }

  /// Open the vector's packet (not our own output): payload, next header and sequence number come back.
  @Test(arguments: packetVectors.filter { $0.spiValue != 0 })
  func openMatches(_ v: PacketVector) throws {
    let inb = try InboundSA(
      spi: v.spiValue, algorithm: v.algorithm, key: hex(v.key), authKey: hex(v.auth_key ?? ""), esn: v.esn,
      replayWindow: 64, replaySequence: v.seq - 1)
    let slot = Slot()
    var packet = slot.packet(hex(v.packet))
    let result = try inb.decapsulate(&packet)
    #expect(result.nextHeader == v.next_header)
    #expect(result.sequenceNumber == v.seq)
    #expect(Hex.encode(packet.bytes) == v.payload)
    #expect(inb.replay.highest == v.seq)
  }

  struct CBCVector: Decodable, CustomStringConvertible {
    let name: String
    let key: String
    let iv: String
    let plaintext: String
    let ciphertext: String
    var description: String { name }
  }

  /// RFC 3602 §4: AES-128-CBC encryption of whole blocks with the given IV.
  @Test(arguments: Vectors.load("rfc3602.json", as: CBCVector.self))
  func rfc3602(_ v: CBCVector) throws {
    let alg: ESPAlgorithm = v.key.count == 64 ? .aes256sha256 : .aes128sha256
    let plaintext = hex(v.plaintext)
    for encrypt in [true, false] {
      let ctx = try AEADContext(algorithm: alg, key: hex(v.key), authKey: authKey(for: alg), encrypt: encrypt)
      let slot = Slot()
      // Layout the context expects: header (8) | IV (16) | text | ICV (16).
      let input = encrypt ? plaintext : hex(v.ciphertext)
      let buffer = slot.packet([UInt8](repeating: 0, count: 8) + hex(v.iv) + input + [UInt8](repeating: 0, count: 16))
      let text = buffer.data + 24
      if encrypt {
        #expect(
          ctx.seal(
            header: buffer.data, sequenceHigh: nil, iv: buffer.data + 8, text: text, length: input.count,
            icv: text + input.count))
        #expect(Hex.encode(UnsafeRawBufferPointer(start: text, count: input.count)) == v.ciphertext)
      } else {
        // Open checks the HMAC first: give it the right one by sealing the ciphertext's HMAC with a twin.
        let twin = try AEADContext(algorithm: .nullsha256, key: [], authKey: authKey(for: alg), encrypt: true)
        #expect(
          twin.seal(
            header: buffer.data, sequenceHigh: nil, iv: buffer.data + 8, text: buffer.data + 8,
            length: 16 + input.count, icv: text + input.count))
        #expect(
          ctx.open(
            header: buffer.data, sequenceHigh: nil, iv: buffer.data + 8, text: text, length: input.count,
            icv: text + input.count))
        #expect(Hex.encode(UnsafeRawBufferPointer(start: text, count: input.count)) == v.plaintext)
      }
    }
  }

  @Test func builtInSelfTestPasses() {
    let results = ESPSelfTest.run()
    #expect(results.count >= 12)
    // One known answer per HMAC, so a wrong digest or truncation cannot pass the selftest.
    for integrity in ESPIntegrity.allCases {
      #expect(KnownAnswer.all.contains { $0.algorithm.integrity == integrity && $0.checksICV }, "\(integrity)")
    }
    for r in results { #expect(r.passed, "\(r.name)") }
  }
}
