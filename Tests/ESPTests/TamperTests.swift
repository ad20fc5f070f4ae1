// SPDX-License-Identifier: Apache-2.0
// Every tampered byte is rejected for the right reason, and a rejected packet changes no SA state.
import Testing

@testable import ESP

@Suite struct TamperTests {
  /// Flip the top bit of each byte of a sealed packet in turn: SPI bytes give unknownSPI, every
  /// other byte (sequence number, IV, ciphertext, padding, trailer, ICV) gives authenticationFailed.
  @Test(arguments: ESPAlgorithm.allCases, [false, true])
  func everyByte(_ alg: ESPAlgorithm, esn: Bool) throws {
    let (out, inb) = try saPair(alg, esn: esn, start: 4)
    let slot = Slot()
    var packet = slot.packet([UInt8](repeating: 0x11, count: 37))
    try out.encapsulate(&packet, nextHeader: 4)
    let sealed = Array(packet.bytes)
    #expect(sealed.count == 8 + alg.ivLength + 40 + (alg.blockSize == 16 ? 8 : 0) + alg.icvLength)
    for i in 0..<sealed.count {
      var bad = sealed
      bad[i] ^= 0x80
      var p = slot.packet(bad)
      let error = espError { _ = try inb.decapsulate(&p) }
      let expected: ESPError = i < 4 ? .unknownSPI : .authenticationFailed
      #expect(error == expected, "byte \(i)")
    }
    // Nothing moved: the window still stands at 4 and the genuine packet (seq 5) still opens once.
    #expect(inb.replay.highest == 4)
    #expect(inb.packets == 0)
    var good = slot.packet(sealed)
    #expect(try inb.decapsulate(&good).sequenceNumber == 5)
    var again = slot.packet(sealed)
    #expect(espError { _ = try inb.decapsulate(&again) } == .replayed)
  }

  /// Authentic packets whose trailer is wrong: pad bytes not 1, 2, 3, … or Pad Length too long.
  @Test(arguments: ESPAlgorithm.allCases)
  func badPadding(_ alg: ESPAlgorithm) throws {
    let trailers: [[UInt8]] =
      alg.blockSize == 16
      ? [
        [1, 2, 3, 9, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 14, 4], [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 14, 4],
        [UInt8](repeating: 0, count: 14) + [250, 4],
      ]
      : [[9, 9, 2, 4], [1, 3, 2, 4], [250, 4]]
    for trailer in trailers {
      let (_, inb) = try saPair(alg)
      let ctx = try AEADContext(algorithm: alg, key: key(for: alg), authKey: authKey(for: alg), encrypt: true)
      let text = [UInt8](repeating: 0x45, count: 16) + trailer
      let slot = Slot()
      var header: [UInt8] = [0xC1, 0xA0, 0xB0, 0x01, 0, 0, 0, 1]
      header += [UInt8](repeating: 0x33, count: alg.ivLength)
      var p = slot.packet(header + text + [UInt8](repeating: 0, count: alg.icvLength))
      #expect(
        ctx.seal(
          header: p.data, sequenceHigh: nil, iv: p.data + 8, text: p.data + 8 + alg.ivLength, length: text.count,
          icv: p.data + 8 + alg.ivLength + text.count))
      #expect(espError { _ = try inb.decapsulate(&p) } == .badPadding, "trailer \(trailer)")
      #expect(inb.replay.highest == 0)  // an authentic but malformed packet does not move the window
    }
  }

  @Test(arguments: ESPAlgorithm.allCases)
  func truncated(_ alg: ESPAlgorithm) throws {
    let (out, inb) = try saPair(alg)
    let slot = Slot()
    var packet = slot.packet([1, 2, 3])
    try out.encapsulate(&packet, nextHeader: 4)
    let sealed = Array(packet.bytes)
    for n in 0..<(8 + alg.ivLength + 2 + alg.icvLength) {
      var p = slot.packet(Array(sealed[0..<n]))
      #expect(espError { _ = try inb.decapsulate(&p) } == .truncated, "length \(n)")
    }
    if alg.blockSize == 16 {
      // A CBC ciphertext that is not whole blocks cannot be decrypted.
      var p = slot.packet(Array(sealed.dropLast(1)))
      #expect(espError { _ = try inb.decapsulate(&p) } == .malformed)
    }
  }

  @Test func noRoomLeavesPacketUnchanged() throws {
    let (out, _) = try saPair(.aes128sha256)
    let slot = Slot()
    var p = PacketBuffer(base: slot.base, capacity: 100, start: 10, count: 50)
    #expect(espError { try out.encapsulate(&p, nextHeader: 4) } == .noRoom)  // headroom 10 < 24
    #expect(p.start == 10 && p.count == 50)
    var q = PacketBuffer(base: slot.base, capacity: 100, start: 24, count: 60)
    #expect(espError { try out.encapsulate(&q, nextHeader: 4) } == .noRoom)  // tailroom 16 < 4 + 2 + 16
    #expect(out.sequenceNumber == 0)
  }

  @Test func sequenceExhaustion() throws {
    let slot = Slot()
    let (out32, _) = try saPair(.aes128gcm16, start: 0xFFFF_FFFD)
    var seqs: [UInt64] = []
    for _ in 0..<2 {
      var p = slot.packet([1])
      seqs.append(try out32.encapsulate(&p, nextHeader: 4))
    }
    #expect(seqs == [0xFFFF_FFFE, 0xFFFF_FFFF])
    var p = slot.packet([1])
    #expect(espError { try out32.encapsulate(&p, nextHeader: 4) } == .sequenceExhausted)
    #expect(out32.sequenceNumber == 0xFFFF_FFFF)  // no wrap

    let (out64, _) = try saPair(.chacha20poly1305, esn: true, start: UInt64.max - 1)
    var q = slot.packet([1])
    #expect(try out64.encapsulate(&q, nextHeader: 4) == UInt64.max)
    var r = slot.packet([1])
    #expect(espError { try out64.encapsulate(&r, nextHeader: 4) } == .sequenceExhausted)
  }

  @Test func saCreationErrors() {
    #expect(throws: SAError.zeroSPI) { try OutboundSA(spi: 0, algorithm: .aes128gcm16, key: key(for: .aes128gcm16)) }
    #expect(throws: SAError.keyLength(expected: 20, got: 16)) {
      try OutboundSA(spi: 1, algorithm: .aes128gcm16, key: [UInt8](repeating: 0, count: 16))
    }
    #expect(throws: SAError.authKeyLength(expected: 32, got: 0)) {
      try InboundSA(spi: 1, algorithm: .aes128sha256, key: key(for: .aes128sha256))
    }
    #expect(throws: SAError.authKeyLength(expected: 20, got: 32)) {
      try InboundSA(
        spi: 1, algorithm: .aes256sha1, key: key(for: .aes256sha1), authKey: [UInt8](repeating: 1, count: 32))
    }
    #expect(throws: SAError.authKeyLength(expected: 48, got: 64)) {
      try OutboundSA(
        spi: 1, algorithm: .aes128sha384, key: key(for: .aes128sha384), authKey: [UInt8](repeating: 1, count: 64))
    }
    #expect(throws: SAError.authKeyLength(expected: 64, got: 48)) {
      try InboundSA(
        spi: 1, algorithm: .aes256sha512, key: key(for: .aes256sha512), authKey: [UInt8](repeating: 1, count: 48))
    }
    #expect(throws: SAError.authKeyLength(expected: 0, got: 32)) {
      try InboundSA(
        spi: 1, algorithm: .aes256gcm16, key: key(for: .aes256gcm16), authKey: [UInt8](repeating: 1, count: 32))
    }
    #expect(throws: SAError.sequenceRange(1 << 32)) {
      try OutboundSA(spi: 1, algorithm: .aes128gcm16, key: key(for: .aes128gcm16), sequenceNumber: 1 << 32)
    }
    #expect(throws: SAError.replayWindow(ESPConstants.maxReplayWindow + 1)) {
      try InboundSA(
        spi: 1, algorithm: .aes128gcm16, key: key(for: .aes128gcm16), replayWindow: ESPConstants.maxReplayWindow + 1)
    }
  }
}
