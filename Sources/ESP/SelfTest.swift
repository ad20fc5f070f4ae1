// SPDX-License-Identifier: Apache-2.0
// The checks `espd run --selftest` runs inside the binary: known answers and the replay window table.

/// Built-in self-tests (the kernel's `mod_init` selftests): the binary refuses to run if they fail.
public enum ESPSelfTest {
  /// One self-test result.
  public struct Result: Sendable {
    public let name: String
    public let passed: Bool
  }

  /// Runs every known-answer test (seal to the exact bytes, open back) and the replay tables.
  /// - Returns: one result per check, in order.
  public static func run() -> [Result] {
    var results: [Result] = []
    for v in KnownAnswer.all {
      results.append(Result(name: "KAT \(v.algorithm.rawValue): \(v.source)", passed: knownAnswer(v)))
    }
    results.append(
      Result(name: "replay window 64, 32-bit", passed: replayTable(window: 64, esn: false, start: 0, replayTable32)))
    results.append(
      Result(
        name: "replay window 64, ESN rollover",
        passed: replayTable(window: 64, esn: true, start: 0xFFFF_FFF0, replayTableESN)))
    results.append(
      Result(
        name: "replay window 4096, 32-bit", passed: replayTable(window: 4096, esn: false, start: 0, replayTable4096)))
    results.append(Result(name: "sequence exhaustion (32-bit)", passed: exhaustion()))
    return results
  }

  /// Whether every check passes.
  public static func passes() -> Bool { run().allSatisfy(\.passed) }

  static func knownAnswer(_ v: KnownAnswer) -> Bool {
    guard let key = Hex.decode(v.key), let authKey = Hex.decode(v.authKey), let iv = Hex.decode(v.iv),
      let payload = Hex.decode(v.payload), let expected = Hex.decode(v.packet)
    else { return false }
    guard
      let out = try? OutboundSA(
        spi: v.spi, algorithm: v.algorithm, key: key, authKey: authKey, esn: v.esn,
        sequenceNumber: v.sequenceNumber - 1),
      let inb = try? InboundSA(
        spi: v.spi, algorithm: v.algorithm, key: key, authKey: authKey, esn: v.esn, replayWindow: 64,
        replaySequence: v.sequenceNumber - 1)
    else { return false }
    let slotSize = 2048
    let slot = UnsafeMutableRawPointer.allocate(byteCount: slotSize, alignment: 16)
    defer { slot.deallocate() }
    var packet = PacketBuffer(base: slot, capacity: slotSize, start: 64, count: 0)
    guard payload.withUnsafeBytes({ packet.assign($0, at: 64) }) else { return false }
    let sealed = iv.withUnsafeBytes { ivBytes in
      (try? out.seal(&packet, nextHeader: v.nextHeader, padLength: v.padLength, explicitIV: ivBytes)) != nil
    }
    guard sealed else { return false }
    let got = Array(packet.bytes)
    let compared = v.checksICV ? got.count : got.count - v.algorithm.icvLength
    guard expected.count == compared, got[..<compared] == expected[...] else { return false }
    if !v.checksICV { return true }
    // Open the expected bytes (not our own output) back to the payload.
    guard expected.withUnsafeBytes({ packet.assign($0, at: 64) }),
      let opened = try? inb.decapsulate(&packet)
    else { return false }
    return opened.nextHeader == v.nextHeader && opened.sequenceNumber == v.sequenceNumber
      && Array(packet.bytes) == payload
  }

  /// A replay table row: the received 32-bit number, the verdict expected, and whether to commit it
  /// (as if its ICV verified).
  typealias Row = (low: UInt32, expect: ReplayVerdict, commit: Bool)

  static func replayTable(window: Int, esn: Bool, start: UInt64, _ rows: [Row]) -> Bool {
    var w = ReplayWindow(size: window, esn: esn, highest: start)
    for row in rows {
      guard w.check(row.low) == row.expect else { return false }
      if row.commit, case .accept(let s) = row.expect, !w.commit(s) { return false }
    }
    return true
  }

  static let replayTable32: [Row] = [
    (1, .accept(1), true), (1, .replayed, false), (0, .replayed, false),  // 0 is the initial edge
    (64, .accept(64), true), (1, .replayed, false), (2, .accept(2), true), (0, .outsideWindow, false),
    (65, .accept(65), true), (2, .replayed, false), (1, .outsideWindow, false), (63, .accept(63), true),
    (200, .accept(200), true), (136, .outsideWindow, false), (137, .accept(137), true), (137, .replayed, false),
    (199, .accept(199), true), (1_000_000, .accept(1_000_000), true), (999_937, .accept(999_937), true),
    (999_936, .outsideWindow, false), (999_999, .accept(999_999), true), (999_999, .replayed, false),
    (0xFFFF_FFFF, .accept(0xFFFF_FFFF), true), (0xFFFF_FFC1, .accept(0xFFFF_FFC1), true),
    (0xFFFF_FFC0, .accept(0xFFFF_FFC0), false), (0xFFFF_FFBF, .outsideWindow, false),
    (0xFFFF_FFC1, .replayed, false),
  ]

  static let replayTableESN: [Row] = [
    (0xFFFF_FFF5, .accept(0xFFFF_FFF5), true), (0xFFFF_FFF5, .replayed, false),
    (0x0000_0002, .accept(0x1_0000_0002), true),  // crosses into the next 2^32 subspace
    (0xFFFF_FFF6, .accept(0xFFFF_FFF6), true),  // still inside the window, high bits 0
    (0xFFFF_FFF5, .replayed, false), (0xFFFF_FFC3, .accept(0xFFFF_FFC3), false),
    (0xFFFF_FFC2, .accept(0x1_FFFF_FFC2), false),  // left of the window: read as far ahead
    (0x0000_0001, .accept(0x1_0000_0001), true), (0x0000_0002, .replayed, false),
    (0x8000_0000, .accept(0x1_8000_0000), true), (0x0000_0001, .accept(0x2_0000_0001), false),
    (0x7FFF_FFC1, .accept(0x1_7FFF_FFC1), true), (0x7FFF_FFC0, .accept(0x2_7FFF_FFC0), false),
  ]

  static let replayTable4096: [Row] = [
    (4096, .accept(4096), true), (1, .accept(1), true), (0, .outsideWindow, false), (1, .replayed, false),
    (4095, .accept(4095), true), (8191, .accept(8191), true), (4095, .outsideWindow, false),
    (4096, .replayed, false), (4097, .accept(4097), true), (12288, .accept(12288), true),
    (8192, .outsideWindow, false), (8191, .outsideWindow, false), (8193, .accept(8193), true),
    (8193, .replayed, false), (4097, .outsideWindow, false),
  ]

  static func exhaustion() -> Bool {
    let key = [UInt8](repeating: 7, count: ESPAlgorithm.aes128gcm16.keyLength)
    guard let sa = try? OutboundSA(spi: 1, algorithm: .aes128gcm16, key: key, sequenceNumber: 0xFFFF_FFFE)
    else { return false }
    let slot = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 16)
    defer { slot.deallocate() }
    var p1 = PacketBuffer(base: slot, capacity: 256, start: 64, count: 20)
    guard (try? sa.encapsulate(&p1, nextHeader: 4)) == 0xFFFF_FFFF else { return false }
    var p2 = PacketBuffer(base: slot, capacity: 256, start: 64, count: 20)
    do throws(ESPError) {
      try sa.encapsulate(&p2, nextHeader: 4)
      return false
    } catch {
      return error == .sequenceExhausted && p2.start == 64 && p2.count == 20
    }
  }
}
