// SPDX-License-Identifier: Apache-2.0
// SA lifetimes (RFC 4301 §4.4.2.1): soft and hard limits fire once each; a hard limit stops the SA;
// sequence numbers never wrap (RFC 4303 §3.3.3).
import Testing

@testable import ESP

@Suite struct LifetimeTests {
  let key = [UInt8](repeating: 7, count: 20)

  func seal(_ sa: OutboundSA, _ slot: Slot, length: Int = 60) throws(ESPError) -> UInt64 {
    var p = slot.packet([UInt8](repeating: 0xAB, count: length))
    return try sa.encapsulate(&p, nextHeader: 4)
  }

  func events(_ sa: OutboundSA) -> [LifetimeEvent] {
    var out: [LifetimeEvent] = []
    while let e = sa.takeLifetimeEvent() { out.append(e) }
    return out
  }

  @Test func packetLimitsFireOnceAndHardStopsTheSA() throws {
    let sa = try OutboundSA(spi: 0x100, algorithm: .aes128gcm16, key: key)
    var limits = SALimits()
    limits.packetsSoft = 3
    limits.packetsHard = 5
    sa.setLimits(limits)
    let slot = Slot()
    for n in 1...2 { _ = try seal(sa, slot); #expect(!sa.hasLifetimeEvent, "packet \(n)") }
    _ = try seal(sa, slot)
    #expect(events(sa) == [LifetimeEvent(hard: false, reason: .packets)])
    _ = try seal(sa, slot)
    #expect(!sa.hasLifetimeEvent)
    _ = try seal(sa, slot)  // the fifth packet is still sealed; it reaches the hard limit
    #expect(events(sa) == [LifetimeEvent(hard: true, reason: .packets)])
    #expect(sa.isExpired)
    #expect(throws: ESPError.expired) { try seal(sa, slot) }
    #expect(sa.sequenceNumber == 5 && sa.packets == 5)
    #expect(!sa.hasLifetimeEvent)
  }

  @Test func byteLimitsCountPayloadBytes() throws {
    let sa = try OutboundSA(spi: 0x101, algorithm: .aes128gcm16, key: key)
    var limits = SALimits()
    limits.bytesSoft = 100
    limits.bytesHard = 1000
    sa.setLimits(limits)
    let slot = Slot()
    _ = try seal(sa, slot, length: 60)
    #expect(!sa.hasLifetimeEvent)
    _ = try seal(sa, slot, length: 60)
    #expect(events(sa) == [LifetimeEvent(hard: false, reason: .bytes)])
    #expect(!sa.isExpired)
  }

  @Test func hardWithoutSoftAndSoftEqualHardGiveBothOrOnlyHard() throws {
    let a = try OutboundSA(spi: 0x102, algorithm: .aes128gcm16, key: key)
    var limits = SALimits()
    limits.packetsSoft = 2
    limits.packetsHard = 2
    a.setLimits(limits)
    let slot = Slot()
    _ = try seal(a, slot)
    _ = try seal(a, slot)
    #expect(events(a) == [LifetimeEvent(hard: false, reason: .packets), LifetimeEvent(hard: true, reason: .packets)])
    let b = try OutboundSA(spi: 0x103, algorithm: .aes128gcm16, key: key)
    var hardOnly = SALimits()
    hardOnly.packetsHard = 1
    b.setLimits(hardOnly)
    _ = try seal(b, slot)
    #expect(events(b) == [LifetimeEvent(hard: true, reason: .packets)])
  }

  @Test func deadlinesFireWhenTheClockReachesThem() throws {
    let sa = try InboundSA(spi: 0x104, algorithm: .aes128gcm16, key: key)
    var limits = SALimits()
    limits.softDeadline = 1_000
    limits.hardDeadline = 2_000
    sa.setLimits(limits)
    #expect(limits.isTimed)
    sa.checkLifetime(now: 999)
    #expect(!sa.hasLifetimeEvent)
    sa.checkLifetime(now: 1_000)
    #expect(sa.takeLifetimeEvent() == LifetimeEvent(hard: false, reason: .seconds))
    sa.checkLifetime(now: 1_500)
    #expect(!sa.hasLifetimeEvent)
    sa.checkLifetime(now: 5_000)
    #expect(sa.takeLifetimeEvent() == LifetimeEvent(hard: true, reason: .seconds))
    #expect(sa.isExpired)
  }

  @Test func anExpiredInboundSARefusesPacketsAndKeepsItsWindow() throws {
    let out = try OutboundSA(spi: 0x105, algorithm: .aes128gcm16, key: key)
    let inb = try InboundSA(spi: 0x105, algorithm: .aes128gcm16, key: key)
    var limits = SALimits()
    limits.packetsHard = 1
    inb.setLimits(limits)
    let slot = Slot()
    var p1 = slot.packet([UInt8](repeating: 1, count: 40))
    try out.encapsulate(&p1, nextHeader: 4)
    _ = try inb.decapsulate(&p1)
    #expect(inb.takeLifetimeEvent() == LifetimeEvent(hard: true, reason: .packets))
    let slot2 = Slot()
    var p2 = slot2.packet([UInt8](repeating: 2, count: 40))
    try out.encapsulate(&p2, nextHeader: 4)
    let highest = inb.replay.highest
    #expect(throws: ESPError.expired) { _ = try inb.decapsulate(&p2) }
    #expect(inb.replay.highest == highest && inb.packets == 1)
  }

  @Test func sequenceSpaceWarnsAtFifteenSixteenthsAndStopsAtTheLastNumber() throws {
    #expect(ESPConstants.softSequenceLimit(esn: false) == 0xF000_0000)
    let sa = try OutboundSA(spi: 0x106, algorithm: .aes128gcm16, key: key, sequenceNumber: 0xFFFF_FFF0)
    let slot = Slot()
    _ = try seal(sa, slot)
    #expect(events(sa) == [LifetimeEvent(hard: false, reason: .sequence)])
    for _ in 0..<13 { _ = try seal(sa, slot) }
    #expect(!sa.hasLifetimeEvent && sa.sequenceNumber == 0xFFFF_FFFE)
    #expect(try seal(sa, slot) == 0xFFFF_FFFF)
    #expect(events(sa) == [LifetimeEvent(hard: true, reason: .sequence)])
    #expect(throws: ESPError.sequenceExhausted) { try seal(sa, slot) }
    #expect(sa.sequenceNumber == 0xFFFF_FFFF)
  }
}
