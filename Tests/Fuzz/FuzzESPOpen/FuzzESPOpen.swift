// SPDX-License-Identifier: Apache-2.0
// InboundSA.decapsulate with real keys, on forgeries and on authentic packets with any trailer.
//
// Input: byte 0 picks the algorithm (ESN on every other one) and byte 1 the replay window; a fresh
// SA is made for each input, so a run depends on its input alone. Then up to 16 packets, each:
// - forgery (kind byte bit 6 clear): a 16-bit length and that many bytes, the ESP packet (bit 7
//   writes the SA's SPI in front, so the forgery reaches the ICV check). It must be dropped and
//   change nothing.
// - authentic (bit 6 set): a 64-bit sequence number, a byte offset and an XOR mask, a 16-bit length
//   and the plaintext with its own trailer (any pad length and pad bytes), sealed with the SA's key.
//   With a non-zero mask the packet is damaged at that offset and must be dropped, changing nothing.
//   Undamaged, the result must agree with RFC 4303 worked out here: replayed or outside the window,
//   ESN high bits guessed wrong (ICV fails), bad padding (§2.4), or the payload, Next Header and
//   sequence number exactly as sealed, with the window advanced.
// Always: every byte read and written lies in the packet's exact-size allocation (ASan).
import ESP
import FuzzSupport

@testable import ESP

/// Per algorithm: its keys and a sealing SA (its context seals; its own counter is never used).
nonisolated(unsafe) let keyed: [(alg: ESPAlgorithm, key: [UInt8], auth: [UInt8], seal: OutboundSA)] = ESPAlgorithm
  .allCases.enumerated().map { i, alg in
    let key = (0..<alg.keyLength).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
    let auth = (0..<alg.authKeyLength).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ i) }
    return (alg, key, auth, try! OutboundSA(spi: 0x5000, algorithm: alg, key: key, authKey: auth, esn: i % 2 == 1))
  }

struct SAState: Equatable {
  var highest: UInt64
  var bitmap: [UInt64]
  var packets: UInt64
  var bytes: UInt64
  init(_ sa: InboundSA) {
    highest = sa.replay.highest
    bitmap = sa.replay.bitmapWords
    packets = sa.packets
    bytes = sa.bytes
  }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzESPOpen(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  var input = FuzzInput(data, size)
  let (alg, key, auth, sealer) = keyed[Int(input.byte()) % keyed.count]
  let window = [1024, 64, 4096, 32, 0, 1][Int(input.byte()) % 6]
  let sa = try! InboundSA(spi: 0x5000, algorithm: alg, key: key, authKey: auth, esn: sealer.esn, replayWindow: window)
  for _ in 0..<16 where input.offset < input.bytes.count {
    let kind = input.byte()
    let before = SAState(sa)
    if kind & 0x40 == 0 {
      forgery(sa, spiInFront: kind & 0x80 != 0, input.take(Int(input.u16())), before: before)
    } else {
      authentic(sa, sealer, &input, before: before)
    }
  }
  return 0
}

func forgery(_ sa: InboundSA, spiInFront: Bool, _ bytes: UnsafeRawBufferPointer, before: SAState) {
  let slot = ExactSlot(capacity: max(1, bytes.count))
  guard var p = slot.packet(bytes, headroom: 0) else { return }
  if spiInFront && p.count >= 4 { p.data.storeBytes(of: sa.spi.bigEndian, as: UInt32.self) }
  do {
    _ = try sa.decapsulate(&p)
    require(false, "a forgery of \(bytes.count) bytes opened under \(sa.algorithm)")
  } catch {
    require(SAState(sa) == before, "a dropped forgery (\(error)) changed the SA's state")
  }
  slot.requireInside(p, "forgery")
}

func authentic(_ sa: InboundSA, _ sealer: OutboundSA, _ input: inout FuzzInput, before: SAState) {
  let alg = sa.algorithm
  var seq = input.u64()
  if !sa.esn { seq &= 0xFFFF_FFFF }
  if seq == 0 { seq = 1 }  // never sent (RFC 4303 §3.3.3: the first packet carries 1)
  let damageAt = Int(input.u16())
  let damage = input.byte()
  let plain = input.take(Int(input.u16()))

  // Text: the plaintext (with whatever trailer it ends in), at least the 2 trailer bytes, then
  // zero-filled to the cipher's block.
  let block = alg.blockSize
  var textLength = max(plain.count, ESPConstants.trailerSize)
  if textLength % block != 0 { textLength += block - textLength % block }
  let headerLength = ESPConstants.headerSize + alg.ivLength
  let total = headerLength + textLength + alg.icvLength
  let slot = ExactSlot(capacity: total)
  let header = slot.base
  header.initializeMemory(as: UInt8.self, repeating: 0, count: total)
  header.storeBytes(of: sa.spi.bigEndian, as: UInt32.self)
  header.storeBytes(of: UInt32(truncatingIfNeeded: seq).bigEndian, toByteOffset: 4, as: UInt32.self)
  let iv = header + ESPConstants.headerSize
  for i in 0..<alg.ivLength {
    iv.storeBytes(of: UInt8(truncatingIfNeeded: seq >> (8 * (i % 8))), toByteOffset: i, as: UInt8.self)
  }
  let text = iv + alg.ivLength
  if let b = plain.baseAddress, plain.count > 0 { text.copyMemory(from: b, byteCount: plain.count) }
  let expectedText = Array(UnsafeRawBufferPointer(start: text, count: textLength))
  let high: UInt32? = sa.esn ? UInt32(truncatingIfNeeded: seq >> 32) : nil
  guard
    sealer.context.seal(
      header: header, sequenceHigh: high, iv: iv, text: text, length: textLength, icv: text + textLength)
  else {
    require(false, "sealing \(textLength) bytes under \(alg) failed")
    return
  }
  if damage != 0 {
    let at = damageAt % total
    header.storeBytes(of: header.load(fromByteOffset: at, as: UInt8.self) ^ damage, toByteOffset: at, as: UInt8.self)
  }

  // What RFC 4303 says should happen, worked out before the SA sees the packet.
  let window = sa.replay.check(UInt32(truncatingIfNeeded: seq))
  let padLength = Int(expectedText[textLength - 2])
  let payloadLength = textLength - 2 - padLength
  let paddingOK =
    payloadLength >= 0
    && (0..<padLength).allSatisfy { expectedText[payloadLength + $0] == UInt8(truncatingIfNeeded: $0 + 1) }

  var p = PacketBuffer(base: slot.base, capacity: total, start: 0, count: total)
  do {
    let out = try sa.decapsulate(&p)
    slot.requireInside(p, "open")
    require(damage == 0, "a packet damaged at byte \(damageAt % total) opened under \(alg)")
    require(window == .accept(seq), "opened although the window said \(window) for \(seq)")
    require(paddingOK, "opened with bad padding (pad length \(padLength), text \(textLength))")
    require(out.sequenceNumber == seq, "sequence number \(out.sequenceNumber), sealed \(seq)")
    require(out.nextHeader == expectedText[textLength - 1], "next header")
    require(p.start == headerLength && p.count == payloadLength, "payload at \(p.start)+\(p.count)")
    require(Array(p.bytes) == Array(expectedText[0..<payloadLength]), "payload bytes differ from the sealed ones")
    let after = SAState(sa)
    require(after.highest == max(before.highest, seq), "window edge \(after.highest) after \(seq)")
    require(after.packets == before.packets + 1, "packet count")
  } catch {
    require(SAState(sa) == before, "a dropped packet (\(error)) changed the SA's state")
    guard damage == 0 else { return }
    switch window {
    case .replayed: require(error == .replayed, "a replay was dropped as \(error)")
    case .outsideWindow: require(error == .outsideWindow, "a packet outside the window was dropped as \(error)")
    case .accept(let inferred) where inferred != seq:
      require(error == .authenticationFailed, "ESN guessed \(inferred) for \(seq), dropped as \(error)")
    case .accept:
      require(!paddingOK && error == .badPadding, "an authentic packet was dropped as \(error)")
    }
  }
}
