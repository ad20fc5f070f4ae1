// SPDX-License-Identifier: Apache-2.0
// 100,000 packets sealed and opened allocate nothing (the swift-nio malloc-counter test).
import CAllocCounter
import Testing

@testable import ESP

@Suite(.disabled(if: CAllocCounter_isSanitized() != 0, "a sanitizer owns malloc: the counter is compiled out"))
struct AllocationTests {
  /// The counter itself works: otherwise "zero allocations" would prove nothing.
  @Test func counterSeesAllocations() {
    #expect(CAllocCounter_isActive() != 0)
    CAllocCounter_start()
    let a = [Int](repeating: 1, count: Int.random(in: 100...200))
    let n = CAllocCounter_stop()
    #expect(a.count >= 100)
    #expect(n >= 1)
  }

  @Test(arguments: ESPAlgorithm.allCases)
  func sealAndOpenAllocateNothing(_ alg: ESPAlgorithm) throws {
    let (out, inb) = try saPair(alg, esn: true)
    let slot = Slot()
    let payload = [UInt8](repeating: 0x42, count: 1400)
    // Warm up once (lazy globals, OpenSSL's first-use tables) outside the count.
    var warm = slot.packet(payload)
    try out.encapsulate(&warm, nextHeader: 4)
    _ = try inb.decapsulate(&warm)
    var failures = 0
    let count: Int = alg == .aes128gcm16 ? 100_000 : 20_000
    CAllocCounter_start()
    for i in 0..<count {
      var p = PacketBuffer(base: slot.base, capacity: Slot.size, start: Slot.headroom, count: 64 + i % 1337)
      do throws(ESPError) {
        try out.encapsulate(&p, nextHeader: 4)
        _ = try inb.decapsulate(&p)
      } catch {
        failures += 1
      }
    }
    let allocations = CAllocCounter_stop()
    #expect(failures == 0)
    #expect(allocations == 0, "\(allocations) allocations in \(count) packets")
    #expect(inb.packets == UInt64(count) + 1)
  }
}
