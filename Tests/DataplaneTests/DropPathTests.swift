// SPDX-License-Identifier: Apache-2.0
// Every drop reason the packet paths can give, each from a crafted packet, counted where expected.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct DropPathTests {
  let wire = Wire()
  let from = Endpoint(address: Fixture.natIP, port: 40001)

  func setup(_ mode: TunnelMode = .tunnel, window: Int = 1024) throws -> (Pipeline, Pipeline) {
    let (c, g) = Fixture.pair(1, mode: mode, window: window)
    let client = Pipeline(
      table: try LookupTables(config: Fixture.clientConfig(c, tunAddress: IPAddress("203.0.113.11")!)))
    let gateway = Pipeline(table: try LookupTables(config: Fixture.gatewayConfig([g])))
    return (client, gateway)
  }

  @Test func selectorMismatch() throws {
    let (client, gateway) = try setup()
    // The client's own outbound accepts any source; the gateway only 203.0.113.11/32.
    let spoofed = TestPackets.udp4("203.0.113.99", "198.51.100.1", sport: 1, dport: 2, payload: [1])
    let (_, esp, _) = wire.send(spoofed, on: client)
    #expect(wire.receive(esp, on: gateway, from: from).0 == .dropped(.selectorMismatch))
    #expect(gateway.table.tunnels[0].counters.drops[.selectorMismatch] == 1)
    #expect(gateway.table.tunnels[0].peer == nil)  // a dropped packet moves no endpoint
  }

  @Test func noRouteAndNoPeer() throws {
    let (_, gateway) = try setup()
    let elsewhere = TestPackets.udp4("198.51.100.1", "192.0.2.99", sport: 1, dport: 2, payload: [])
    #expect(wire.send(elsewhere, on: gateway).0 == .dropped(.noRoute))
    // The responder has not heard from its peer yet.
    let toClient = TestPackets.udp4("198.51.100.1", "203.0.113.11", sport: 1, dport: 2, payload: [])
    #expect(wire.send(toClient, on: gateway).0 == .dropped(.noPeer))
    #expect(wire.send([0x45, 0, 0], on: gateway).0 == .dropped(.malformed))
    #expect(gateway.counters.drops[.noRoute] == 1 && gateway.counters.drops[.noPeer] == 1)
  }

  @Test func outsideWindowAndReplayed() throws {
    let (client, gateway) = try setup(window: 32)
    let inner = TestPackets.udp4("203.0.113.11", "198.51.100.1", sport: 1, dport: 2, payload: [1])
    var packets: [[UInt8]] = []
    for _ in 0..<100 { packets.append(wire.send(inner, on: client).1) }
    #expect(wire.receive(packets[99], on: gateway, from: from).0 == .decapsulated(tunnel: 0))
    #expect(wire.receive(packets[0], on: gateway, from: from).0 == .dropped(.outsideWindow))
    #expect(wire.receive(packets[80], on: gateway, from: from).0 == .decapsulated(tunnel: 0))
    #expect(wire.receive(packets[80], on: gateway, from: from).0 == .dropped(.replayed))
  }

  @Test func dummyAndMalformedInner() throws {
    let (_, gateway) = try setup()
    // Seal with the client's keys by hand: Next Header 59, then Next Header 4 over garbage.
    let (c, _) = Fixture.pair(1, mode: .tunnel)
    let sa = try OutboundSA(spi: c.outbound.spi, algorithm: c.outbound.algorithm, key: c.outbound.key)
    for (nh, expected) in [(UInt8(59), DropReason.dummy), (UInt8(4), .malformed), (UInt8(41), .malformed)] {
      var p = wire.slot.packet(TestPackets.udp4("203.0.113.11", "198.51.100.1", sport: 1, dport: 2, payload: [1]))
      try sa.encapsulate(&p, nextHeader: nh == 4 ? 4 : nh)
      var bytes = Array(p.bytes)
      if nh == 4 {
        // Re-seal a non-IP payload under NH 4.
        var q = wire.slot.packet([0x99, 1, 2, 3, 4, 5])
        try sa.encapsulate(&q, nextHeader: 4)
        bytes = Array(q.bytes)
      }
      #expect(wire.receive(bytes, on: gateway, from: from).0 == .dropped(expected), "nh \(nh)")
    }
  }

  @Test func sequenceExhaustionAndTooBig() throws {
    var (c, g) = Fixture.pair(1, mode: .tunnel)
    g.peer = from
    g.outbound.sequenceNumber = 0xFFFF_FFFF
    _ = c
    let gateway = Pipeline(table: try LookupTables(config: Fixture.gatewayConfig([g])))
    let toClient = TestPackets.udp4("198.51.100.1", "203.0.113.11", sport: 1, dport: 2, payload: [])
    #expect(wire.send(toClient, on: gateway).0 == .dropped(.sequenceExhausted))
    // A packet that leaves no tailroom for the ESP trailer.
    let (_, g2) = Fixture.pair(2, mode: .tunnel)
    var g3 = g2
    g3.peer = from
    let gw2 = Pipeline(table: try LookupTables(config: Fixture.gatewayConfig([g3])))
    let big = TestPackets.udp4(
      "198.51.100.1", "203.0.113.12", sport: 1, dport: 2,
      payload: [UInt8](repeating: 0, count: TestSlot.size - DataplaneConstants.headroom - 28 - 4))
    #expect(wire.send(big, on: gw2).0 == .dropped(.tooBig))
  }

  @Test func verdictsAddUp() throws {
    let (client, gateway) = try setup()
    let inner = TestPackets.udp4("203.0.113.11", "198.51.100.1", sport: 1, dport: 2, payload: [1])
    var sent = 0
    for i in 0..<50 {
      let (_, esp, _) = wire.send(inner, on: client)
      var bytes = esp
      if i % 5 == 0 { bytes[bytes.count - 1] ^= 0xFF }
      _ = wire.receive(bytes, on: gateway, from: from)
      _ = wire.receive([0xFF], on: gateway, from: from)
      sent += 2
    }
    #expect(gateway.counters.total == UInt64(sent))
    #expect(
      gateway.counters.decapsulated == 40 && gateway.counters.drops[.authFailed] == 10
        && gateway.counters.keepalive == 50)
  }
}
