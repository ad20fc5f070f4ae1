// SPDX-License-Identifier: Apache-2.0
// The packet paths end to end in memory: client and gateway pipelines, NAT clients, rebinding, forgery.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct PipelineTests {
  let wire = Wire()

  @Test(arguments: ESPAlgorithm.allCases)
  func tunnelModeRoundTrip(_ alg: ESPAlgorithm) throws {
    let (c, g) = Fixture.pair(1, mode: .tunnel, alg: alg)
    let client = Pipeline(
      table: try LookupTables(config: Fixture.clientConfig(c, tunAddress: IPAddress("203.0.113.11")!)))
    let gateway = Pipeline(table: try LookupTables(config: Fixture.gatewayConfig([g])))
    let inner = TestPackets.udp4("203.0.113.11", "198.51.100.1", sport: 5000, dport: 53, payload: Array("hello".utf8))
    let (v, esp, addr) = wire.send(inner, on: client)
    #expect(v == .encapsulated(tunnel: 0))
    #expect(addr?.remote == Fixture.gateway)
    #expect(esp.count > inner.count)
    let nat = Endpoint(address: Fixture.natIP, port: 40001)
    let (v2, out) = wire.receive(esp, on: gateway, from: nat)
    #expect(v2 == .decapsulated(tunnel: 0))
    #expect(out == inner)
    // The responder learned the client's NATed endpoint and replies there.
    #expect(gateway.table.tunnels[0].peer == nat)
    let reply = TestPackets.udp4("198.51.100.1", "203.0.113.11", sport: 53, dport: 5000, payload: [1, 2, 3])
    let (v3, esp3, addr3) = wire.send(reply, on: gateway)
    #expect(v3 == .encapsulated(tunnel: 0))
    #expect(addr3 == DatagramAddress(remote: nat, local: Fixture.gateway))
    let (v4, back) = wire.receive(
      esp3, on: client, from: Fixture.gateway, at: Endpoint(address: IPAddress("192.0.2.77")!, port: 4500))
    #expect(v4 == .decapsulated(tunnel: 0))
    #expect(back == reply)
    #expect(gateway.counters.total == 2 && client.counters.total == 2)
  }

  /// The loops' fixed head- and tailroom hold every transform's ESP overhead (the widest ICV,
  /// HMAC-SHA-512-256's 32 bytes, included) and the outer IPv6 and UDP headers.
  @Test func slotRoomFitsEveryTransform() {
    #expect(DataplaneConstants.tailroom >= ESPLayout.tailroom)
    #expect(DataplaneConstants.headroom >= 40 + 8 + ESPLayout.headroom)
    for alg in ESPAlgorithm.allCases {
      #expect(alg.blockSize - 1 + ESPConstants.trailerSize + alg.icvLength <= DataplaneConstants.tailroom, "\(alg)")
    }
  }

  /// Three clients behind one NAT, identical inner flows (udp 1701 → 1701), one alias each: the
  /// gateway sees three distinct sources, and each reply goes to its own SA and NAT port.
  @Test func transportAliasesKeepIdenticalFlowsApart() throws {
    let pairs = (1...3).map { Fixture.pair($0, mode: .transport) }
    let gateway = Pipeline(table: try LookupTables(config: Fixture.gatewayConfig(pairs.map(\.gateway))))
    var clients: [Pipeline] = []
    for (i, p) in pairs.enumerated() {
      clients.append(
        Pipeline(table: try LookupTables(config: Fixture.clientConfig(p.client, tunAddress: IPAddress("192.0.2.200")!)))
      )
    }
    // Every client's TUN address is the same private address behind its own NAT (Windows L2TP).
    for (i, client) in clients.enumerated() {
      let l2tp = TestPackets.udp4(
        "192.0.2.200", "198.51.100.1", sport: 1701, dport: 1701, payload: Array("client \(i + 1)".utf8))
      let (v, esp, _) = wire.send(l2tp, on: client)
      #expect(v == .encapsulated(tunnel: 0))
      let (v2, out) = wire.receive(esp, on: gateway, from: Endpoint(address: Fixture.natIP, port: UInt16(31000 + i)))
      #expect(v2 == .decapsulated(tunnel: Int32(i)))
      let h = try #require(out.withUnsafeBytes { IPHeader.parse($0) })
      #expect(h.source == IPAddress("198.51.100.\(131 + i)"))  // the alias
      #expect(h.destination == Fixture.gatewayTun)
      #expect(Array(out[28...]) == Array("client \(i + 1)".utf8))
    }
    for i in 0..<3 {
      let reply = TestPackets.udp4(
        "198.51.100.1", "198.51.100.\(131 + i)", sport: 1701, dport: 1701, payload: Array("to \(i + 1)".utf8))
      let (v, esp, addr) = wire.send(reply, on: gateway)
      #expect(v == .encapsulated(tunnel: Int32(i)))
      #expect(addr?.remote == Endpoint(address: Fixture.natIP, port: UInt16(31000 + i)))
      #expect(esp.prefix(4) == [0, 0, 0x20, UInt8(i + 1)])  // SPI 0x2000 + i
      // Only client i can open it.
      for (j, client) in clients.enumerated() {
        let (v2, out) = wire.receive(esp, on: client, from: Fixture.gateway)
        if i == j {
          #expect(v2 == .decapsulated(tunnel: 0))
          #expect(Array(out[28...]) == Array("to \(i + 1)".utf8))
        } else {
          #expect(v2 == .dropped(.unknownSPI))
        }
      }
    }
  }

  /// One shared alias: replies are steered by the inner 5-tuple learned from inbound packets;
  /// a flow never seen has no route.
  @Test func sharedAliasSteersByLearnedFlow() throws {
    let alias = IPAddress("198.51.100.130")!
    let pairs = (1...3).map { Fixture.pair($0, mode: .transport, alias: alias) }
    let gateway = Pipeline(table: try LookupTables(config: Fixture.gatewayConfig(pairs.map(\.gateway))))
    for (i, p) in pairs.enumerated() {
      let client = Pipeline(
        table: try LookupTables(config: Fixture.clientConfig(p.client, tunAddress: IPAddress("192.0.2.200")!)))
      let pkt = TestPackets.udp4(
        "192.0.2.200", "198.51.100.1", sport: UInt16(1701 + i), dport: 1701, payload: [UInt8(i)])
      let (_, esp, _) = wire.send(pkt, on: client)
      let (v, _) = wire.receive(esp, on: gateway, from: Endpoint(address: Fixture.natIP, port: UInt16(31000 + i)))
      #expect(v == .decapsulated(tunnel: Int32(i)))
    }
    #expect(gateway.flows.learned == 3)
    for i in 0..<3 {
      let reply = TestPackets.udp4("198.51.100.1", "198.51.100.130", sport: 1701, dport: UInt16(1701 + i), payload: [9])
      let (v, _, addr) = wire.send(reply, on: gateway)
      #expect(v == .encapsulated(tunnel: Int32(i)))
      #expect(addr?.remote.port == UInt16(31000 + i))
    }
    let unknown = TestPackets.udp4("198.51.100.1", "198.51.100.130", sport: 1701, dport: 1999, payload: [9])
    #expect(wire.send(unknown, on: gateway).0 == .dropped(.noRoute))
  }

  /// A client (203.0.113.11) and a gateway with one tunnel mode tunnel, and a packet from the client.
  static func oneClient() throws -> (client: Pipeline, gateway: Pipeline, inner: [UInt8]) {
    let (c, g) = Fixture.pair(1, mode: .tunnel)
    let client = Pipeline(
      table: try LookupTables(config: Fixture.clientConfig(c, tunAddress: IPAddress("203.0.113.11")!)))
    let gateway = Pipeline(table: try LookupTables(config: Fixture.gatewayConfig([g])))
    return (client, gateway, TestPackets.udp4("203.0.113.11", "198.51.100.1", sport: 1, dport: 2, payload: [7]))
  }

  /// NAT rebinding: an authenticated packet from a new port moves the endpoint; a forgery (valid
  /// SPI, bad ICV) or a replay from yet another address moves nothing and is counted.
  @Test func rebindingAndForgery() throws {
    let (client, gateway, inner) = try Self.oneClient()
    let first = Endpoint(address: Fixture.natIP, port: 40001)
    let second = Endpoint(address: Fixture.natIP, port: 40002)
    let attacker = Endpoint(address: IPAddress("198.51.100.66")!, port: 4500)
    let (_, esp1, _) = wire.send(inner, on: client)
    #expect(wire.receive(esp1, on: gateway, from: first).0 == .decapsulated(tunnel: 0))
    let (_, esp2, _) = wire.send(inner, on: client)
    var forged = esp2
    forged[forged.count - 1] ^= 1
    #expect(wire.receive(forged, on: gateway, from: attacker).0 == .dropped(.authFailed))
    #expect(wire.receive(esp1, on: gateway, from: attacker).0 == .dropped(.replayed))
    let tunnel = gateway.table.tunnels[0]
    #expect(tunnel.peer == first)
    #expect(tunnel.counters.endpointChanges == 0)
    #expect(wire.receive(esp2, on: gateway, from: second).0 == .decapsulated(tunnel: 0))
    #expect(tunnel.peer == second)
    #expect(tunnel.counters.endpointChanges == 1)
    #expect(tunnel.counters.drops[.authFailed] == 1 && tunnel.counters.drops[.replayed] == 1)
    let (_, _, addr) = wire.send(
      TestPackets.udp4("198.51.100.1", "203.0.113.11", sport: 2, dport: 1, payload: []), on: gateway)
    #expect(addr?.remote == second)  // nothing more goes to the stale port
  }

  /// A packet that arrives late from the old endpoint (reordered across a NAT rebinding) is
  /// delivered but does not move the peer back: only the SA's newest packet moves it.
  @Test func aLatePacketFromTheOldEndpointMovesNothing() throws {
    let (client, gateway, inner) = try Self.oneClient()
    let old = Endpoint(address: Fixture.natIP, port: 40001)
    let new = Endpoint(address: Fixture.natIP, port: 40002)
    let esp = (0..<3).map { _ in wire.send(inner, on: client).1 }
    #expect(wire.receive(esp[0], on: gateway, from: old).0 == .decapsulated(tunnel: 0))
    #expect(wire.receive(esp[2], on: gateway, from: new).0 == .decapsulated(tunnel: 0))
    let tunnel = gateway.table.tunnels[0]
    #expect(tunnel.peer == new && gateway.takePeerEvents().count == 1)
    #expect(wire.receive(esp[1], on: gateway, from: old).0 == .decapsulated(tunnel: 0))
    #expect(tunnel.peer == new, "a late packet moved the peer back")
    #expect(gateway.takePeerEvents().isEmpty && tunnel.counters.endpointChanges == 1)
  }

  @Test func classificationVerdicts() throws {
    let (_, g) = Fixture.pair(1, mode: .tunnel)
    let gateway = Pipeline(table: try LookupTables(config: Fixture.gatewayConfig([g])))
    let from = Endpoint(address: Fixture.natIP, port: 4500)
    #expect(wire.receive([0xFF], on: gateway, from: from).0 == .keepalive)
    let ike = [0, 0, 0, 0] + [UInt8](repeating: 0x11, count: 28)
    let (v, out) = wire.receive(ike, on: gateway, from: from)
    #expect(v == .ike)
    #expect(out == [UInt8](repeating: 0x11, count: 28))  // marker stripped
    #expect(wire.receive([1, 2], on: gateway, from: from).0 == .dropped(.malformed))
    #expect(wire.receive([0, 0, 0, 0, 1], on: gateway, from: from).0 == .dropped(.malformed))
    #expect(
      wire.receive([0xDE, 0xAD, 0xBE, 0xEF] + [UInt8](repeating: 0, count: 40), on: gateway, from: from).0
        == .dropped(.unknownSPI))
    #expect(gateway.counters.keepalive == 1 && gateway.counters.ike == 1 && gateway.counters.drops.total == 3)
  }
}
