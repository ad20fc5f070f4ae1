// SPDX-License-Identifier: Apache-2.0
// The control ops and members charon's plugins use (integrations/strongswan/ESPD-EXTENSIONS.md):
// alloc_spi/release_spi, query_sa, update_tunnel, list names_only, the answers of add_tunnel and
// rekey, nat_keepalive, and the peer event. Refusals change nothing.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct ControlExtensionTests {
  static let key = String(repeating: "ab", count: 20)
  static func sa(_ spi: String) -> String { "{\"spi\":\"\(spi)\",\"alg\":\"aes128gcm16\",\"key\":\"\(key)\"}" }
  static func tunnel(_ name: String, inbound: String, outbound: String, extra: String = "") -> String {
    "{\"op\":\"add_tunnel\",\"tunnel\":{\"name\":\"\(name)\",\"remote_ts\":[\"203.0.113.99/32\"]\(extra),\"inbound\":[\(sa(inbound))],\"outbound\":\(sa(outbound))}}"
  }

  static func harness(_ n: Int = 2, limits: Limits = Limits()) throws -> ControlHarness {
    var c = Fixture.gatewayConfig((1...n).map { Fixture.pair($0, mode: .tunnel).gateway })
    c.limits = limits
    return try ControlHarness(c)
  }

  static func refused<T>(_ r: Result<T, ControlError>) -> ControlError? {
    if case .failure(let e) = r { return e }
    return nil
  }

  static func spi(_ members: String) -> UInt32? {
    guard let v = try? JSONValue.parse("{\"ok\":true\(members)}"), case .string(let s)? = v["spi"] else { return nil }
    return ConfigParser.hexOrInteger(.string(s)).map { UInt32($0) }
  }

  // MARK: parsing

  @Test func newOpsRefuseBadMembers() {
    let bad = [
      "{\"op\":\"alloc_spi\",\"min\":\"0x200\",\"max\":\"0x100\"}", "{\"op\":\"alloc_spi\",\"max\":\"0xff\"}",
      "{\"op\":\"alloc_spi\",\"min\":\"0x1ffffffff\"}", "{\"op\":\"alloc_spi\",\"count\":1}",
      "{\"op\":\"release_spi\",\"spi\":0}", "{\"op\":\"release_spi\"}",
      "{\"op\":\"query_sa\",\"name\":\"client1\",\"spi\":\"0x1001\"}",
      "{\"op\":\"query_sa\",\"name\":\"client1\",\"spi\":\"0x1001\",\"direction\":\"in\"}",
      "{\"op\":\"query_sa\",\"name\":\"client1\",\"direction\":\"inbound\"}",
      "{\"op\":\"update_tunnel\",\"name\":\"client1\"}",
      "{\"op\":\"update_tunnel\",\"name\":\"client1\",\"peer\":\"0.0.0.0:4500\"}",
      "{\"op\":\"update_tunnel\",\"name\":\"client1\",\"peer\":\"203.0.113.7\"}",
      "{\"op\":\"update_tunnel\",\"name\":\"client1\",\"peer\":\"203.0.113.7:4500\",\"local\":\"2001:db8::1\"}",
      "{\"op\":\"update_tunnel\",\"name\":\"client1\",\"peer\":\"203.0.113.7:4500\",\"remote_ts\":[]}",
      "{\"op\":\"list\",\"prefix\":\"c\"}", "{\"op\":\"list\",\"names_only\":1}",
      "{\"op\":\"list\",\"names_only\":true,\"prefix\":5}",
    ]
    for line in bad {
      guard case .failure(let e) = ControlRequest.parse(Array(line.utf8)) else {
        Issue.record("accepted: \(line)")
        continue
      }
      #expect(!e.message.isEmpty && !e.answer.contains("\n"))
    }
    guard case .success(.allocSPI(let lo, let hi)) = ControlRequest.parse(Array("{\"op\":\"alloc_spi\"}".utf8)) else {
      Issue.record("alloc_spi without bounds")
      return
    }
    #expect(lo == 0x100 && hi == UInt32.max)
    guard case .success(.allocSPI(let lo2, _)) = ControlRequest.parse(Array("{\"op\":\"alloc_spi\",\"min\":1}".utf8))
    else {
      Issue.record("alloc_spi min 1")
      return
    }
    #expect(lo2 == 0x100)
  }

  // MARK: alloc_spi / release_spi

  @Test func allocatedSPIsAreUnusedReservedAndInRange() throws {
    let h = try Self.harness()
    var got = Set<UInt32>()
    for _ in 0..<4 {
      let s = try #require(Self.spi(try h.answer("{\"op\":\"alloc_spi\",\"min\":\"0x1000\",\"max\":\"0x1005\"}").get()))
      #expect((0x1000...0x1005).contains(s) && s != 0x1001 && s != 0x1002)  // the tunnels' inbound SPIs
      got.insert(s)
    }
    #expect(got.count == 4 && h.model.reserved.count == 4)
    let e = try #require(Self.refused(h.answer("{\"op\":\"alloc_spi\",\"min\":\"0x1000\",\"max\":\"0x1005\"}")))
    #expect(e.message.contains("no free SPI") && h.model.reserved.count == 4)
    // Released: free again; a second release is refused.
    let one = got.first!
    try h.ok("{\"op\":\"release_spi\",\"spi\":\"\(ConfigParser.spiText(one))\"}")
    #expect(Self.refused(h.answer("{\"op\":\"release_spi\",\"spi\":\"\(ConfigParser.spiText(one))\"}")) != nil)
    #expect(Self.spi(try h.answer("{\"op\":\"alloc_spi\",\"min\":\"0x1000\",\"max\":\"0x1005\"}").get()) == one)
    // An inbound SA's SPI is not a reservation.
    let inUse = try #require(Self.refused(h.answer("{\"op\":\"release_spi\",\"spi\":\"0x1001\"}")))
    #expect(inUse.message.contains("client1"))
  }

  @Test func aReservationEndsWhenInstalledOrAfter300Seconds() throws {
    let h = try Self.harness()
    let range = "\"min\":\"0x5000\",\"max\":\"0x5000\""
    #expect(Self.spi(try h.answer("{\"op\":\"alloc_spi\",\(range)}").get()) == 0x5000)
    #expect(Self.refused(h.answer("{\"op\":\"alloc_spi\",\(range)}", now: 299_000_000_000)) != nil)
    #expect(Self.spi(try h.answer("{\"op\":\"alloc_spi\",\(range)}", now: 300_000_000_000).get()) == 0x5000)
    // add_tunnel installs it: the reservation is gone, and the SPI is in use.
    try h.ok(Self.tunnel("t9", inbound: "0x5000", outbound: "0x5001"), now: 300_000_000_001)
    #expect(h.model.reserved.isEmpty && h.model.inboundSPIs[0x5000] != nil)
    #expect(Self.refused(h.answer("{\"op\":\"alloc_spi\",\(range)}", now: 300_000_000_002)) != nil)
    // rekey installs one too.
    let s = try #require(Self.spi(try h.answer("{\"op\":\"alloc_spi\",\"min\":\"0x6000\",\"max\":\"0x6fff\"}").get()))
    try h.ok("{\"op\":\"rekey\",\"name\":\"t9\",\"inbound\":\(Self.sa(ConfigParser.spiText(s)))}")
    #expect(!h.model.isReserved(s, now: 0) && h.model.inboundSPIs[s] != nil)
  }

  @Test func reservationsAreBoundedByLimitsTunnels() throws {
    var limits = Limits()
    limits.tunnels = 3
    let h = try Self.harness(limits: limits)
    for _ in 0..<3 { _ = try h.answer("{\"op\":\"alloc_spi\"}").get() }
    let e = try #require(Self.refused(h.answer("{\"op\":\"alloc_spi\"}")))
    #expect(e.isLimit && e.message.contains("limits.tunnels") && h.model.reserved.count == 3)
    // Many reserve-and-release rounds keep the bookkeeping bounded.
    let free = try #require(h.model.reserved.keys.first)
    try h.ok("{\"op\":\"release_spi\",\"spi\":\"\(ConfigParser.spiText(free))\"}")
    for _ in 0..<10_000 {
      let s = try #require(Self.spi(try h.answer("{\"op\":\"alloc_spi\"}").get()))
      try h.ok("{\"op\":\"release_spi\",\"spi\":\"\(ConfigParser.spiText(s))\"}")
    }
    #expect(h.model.reservedOrder.count - h.model.reservedHead <= 2 * 1024 + 1)
  }

  // MARK: query_sa

  @Test func querySAGivesCountersAndIdleTimeOfOneSA() throws {
    let wire = Wire()
    let pair = Fixture.pair(1, mode: .tunnel)
    let h = try ControlHarness(Fixture.gatewayConfig([pair.gateway]))
    let client = Pipeline(
      table: try LookupTables(config: Fixture.clientConfig(pair.client, tunAddress: IPAddress("203.0.113.11")!)))
    let q = { (spi: String, d: String, now: UInt64) in
      h.model.query(
        name: "client1", spi: UInt32(ConfigParser.hexOrInteger(.string(spi))!), direction: SADirection(rawValue: d)!,
        now: now
      ).map(JSONValue.membersText)
    }
    #expect(try q("0x1001", "inbound", 5_000_000_000).get() == ",\"packets\":0,\"bytes\":0,\"idle_ms\":null")
    h.gateway.batchTime = 7_000_000_000
    let inner = TestPackets.udp4("203.0.113.11", "198.51.100.1", sport: 1, dport: 2, payload: [1, 2, 3])
    let (_, esp, _) = wire.send(inner, on: client)
    #expect(wire.receive(esp, on: h.gateway, from: Fixture.gateway).0 == .decapsulated(tunnel: 0))
    let reply = TestPackets.udp4("198.51.100.1", "203.0.113.11", sport: 2, dport: 1, payload: [4])
    h.gateway.batchTime = 8_000_000_000
    #expect(wire.send(reply, on: h.gateway).0 == .encapsulated(tunnel: 0))
    #expect(
      try q("0x1001", "inbound", 7_250_000_000).get()
        == ",\"packets\":1,\"bytes\":\(inner.count),\"idle_ms\":250")
    #expect(
      try q("0x2001", "outbound", 9_000_000_000).get()
        == ",\"packets\":1,\"bytes\":\(reply.count),\"idle_ms\":1000")
    // Wrong direction, SPI or tunnel: refused.
    #expect(Self.refused(q("0x1001", "outbound", 0)) != nil)
    #expect(Self.refused(q("0x2001", "inbound", 0)) != nil)
    #expect(Self.refused(h.model.query(name: "nobody", spi: 0x1001, direction: .inbound, now: 0)) != nil)
    // Read-only: the model's apply accepts it and changes nothing.
    #expect(
      try h.ok("{\"op\":\"query_sa\",\"name\":\"client1\",\"spi\":\"0x1001\",\"direction\":\"inbound\"}")
        == "")
  }

  // MARK: update_tunnel and the peer event

  @Test func updateTunnelMovesThePeerThroughTheQueueAndKeepsTheRest() throws {
    let wire = Wire()
    let pair = Fixture.pair(1, mode: .tunnel)
    let h = try ControlHarness(Fixture.gatewayConfig([pair.gateway]))
    let client = Pipeline(
      table: try LookupTables(config: Fixture.clientConfig(pair.client, tunAddress: IPAddress("203.0.113.11")!)))
    let inner = TestPackets.udp4("203.0.113.11", "198.51.100.1", sport: 1, dport: 2, payload: [1])
    let first = Endpoint(address: Fixture.natIP, port: 40000)
    #expect(wire.receive(wire.send(inner, on: client).1, on: h.gateway, from: first).0 == .decapsulated(tunnel: 0))
    let t = try #require(h.gateway.table.slots[0])
    let before = h.model.config
    #expect(
      Self.refused(h.answer("{\"op\":\"update_tunnel\",\"name\":\"nobody\",\"peer\":\"203.0.113.7:4500\"}")) != nil)
    #expect(h.queues[0].pushed == 0 && h.model.config.tunnels[0].peer == before.tunnels[0].peer)
    try h.ok(
      "{\"op\":\"update_tunnel\",\"name\":\"client1\",\"peer\":\"203.0.113.7:4501\",\"local\":\"192.0.2.1\"}")
    #expect(t.peer == first)  // not before the worker takes its queue
    h.drain()
    let moved = Endpoint(address: IPAddress("203.0.113.7")!, port: 4501)
    #expect(t.peer == moved && t.local == IPAddress("192.0.2.1") && h.model.config.tunnels[0].peer == moved)
    #expect(h.gateway.table.slots[0] === t && t.counters.packetsIn == 1 && t.counters.endpointChanges == 0)
    let reply = TestPackets.udp4("198.51.100.1", "203.0.113.11", sport: 2, dport: 1, payload: [4])
    let (v, _, address) = wire.send(reply, on: h.gateway)
    #expect(v == .encapsulated(tunnel: 0) && address?.remote == moved)
    #expect(h.gateway.peerEvents.isEmpty)  // a controller's move is not an event
  }

  @Test func aPeerMovedByAnAuthenticatedPacketRaisesOneEvent() throws {
    let wire = Wire()
    let pair = Fixture.pair(1, mode: .tunnel)
    let gateway = Pipeline(table: try LookupTables(config: Fixture.gatewayConfig([pair.gateway])))
    let client = Pipeline(
      table: try LookupTables(config: Fixture.clientConfig(pair.client, tunAddress: IPAddress("203.0.113.11")!)))
    let inner = TestPackets.udp4("203.0.113.11", "198.51.100.1", sport: 1, dport: 2, payload: [1])
    let a = Endpoint(address: Fixture.natIP, port: 40000)
    let b = Endpoint(address: Fixture.natIP, port: 40001)
    #expect(wire.receive(wire.send(inner, on: client).1, on: gateway, from: a).0 == .decapsulated(tunnel: 0))
    #expect(gateway.peerEvents.isEmpty)  // learnt, not moved
    #expect(wire.receive(wire.send(inner, on: client).1, on: gateway, from: b).0 == .decapsulated(tunnel: 0))
    #expect(wire.receive(wire.send(inner, on: client).1, on: gateway, from: b).0 == .decapsulated(tunnel: 0))
    // A forged packet from elsewhere moves nothing.
    var forged = wire.send(inner, on: client).1
    forged[forged.count - 1] ^= 1
    #expect(wire.receive(forged, on: gateway, from: a).0 == .dropped(.authFailed))
    let events = gateway.takePeerEvents()
    #expect(events == [PeerEvent(tunnel: "client1", spi: 0x1001, peer: b, previous: a)])
    #expect(
      events[0].json
        == "{\"event\":\"peer\",\"tunnel\":\"client1\",\"spi\":\"0x00001001\",\"peer\":\"203.0.113.50:40001\",\"previous\":\"203.0.113.50:40000\"}"
    )
    #expect(gateway.peerEvents.isEmpty)
    let mailbox = try Mailbox()
    mailbox.post(peerEvents: events)
    _ = mailbox.take()
    #expect(mailbox.takePeerEvents() == events && mailbox.takePeerEvents().isEmpty)
  }

  // MARK: answers, names, instance, nat_keepalive

  @Test func answersNameTheAliasAndTheReplacedSA() throws {
    var c = Fixture.gatewayConfig([Fixture.pair(1, mode: .tunnel).gateway])
    c.transportAliasPool = Prefix(address: IPAddress("198.51.100.128")!, length: 28)
    let h = try ControlHarness(c)
    let transport =
      "{\"op\":\"add_tunnel\",\"tunnel\":{\"name\":\"l2tp\",\"mode\":\"transport\",\"inbound\":[\(Self.sa("0x7001"))],\"outbound\":\(Self.sa("0x7002"))}}"
    let added = try h.answer(transport).get()
    let alias = try #require(h.model.record(named: "l2tp")?.config.alias)
    #expect(added == ",\"alias\":\"\(alias)\"")
    #expect(try h.answer(Self.tunnel("t9", inbound: "0x7003", outbound: "0x7004")).get() == "")
    #expect(
      try h.ok("{\"op\":\"rekey\",\"name\":\"client1\",\"outbound\":\(Self.sa("0x7005"))}")
        == ",\"replaced\":{\"spi\":\"0x00002001\",\"packets\":0,\"bytes\":0}")
    #expect(try h.answer("{\"op\":\"rekey\",\"name\":\"client1\",\"inbound\":\(Self.sa("0x7006"))}").get() == "")
    #expect(JSONValue.membersText(h.model.names(prefix: nil)) == ",\"names\":[\"client1\",\"l2tp\",\"t9\"]")
    #expect(JSONValue.membersText(h.model.names(prefix: "cl")) == ",\"names\":[\"client1\"]")
    #expect(JSONValue.membersText(h.model.names(prefix: "x")) == ",\"names\":[]")
    guard
      case .success(.listNames(let p)) = ControlRequest.parse(
        Array("{\"op\":\"list\",\"names_only\":true,\"prefix\":\"cl\"}".utf8)), p == "cl"
    else {
      Issue.record("list names_only")
      return
    }
    let i = ControlServer.newInstance()
    #expect(i.count == 16 && i.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
    #expect(i != ControlServer.newInstance())
  }

  @Test func natKeepaliveFalseKeepsATunnelOutOfTheKeepaliveSweep() throws {
    let h = try Self.harness(1)
    let peer = ",\"peer\":\"203.0.113.7:4500\""
    try h.ok(Self.tunnel("quiet", inbound: "0x7001", outbound: "0x7002", extra: peer + ",\"nat_keepalive\":false"))
    h.drain()
    #expect(h.gateway.table.initiators.isEmpty)
    let other = Self.tunnel("loud", inbound: "0x7003", outbound: "0x7004", extra: peer + ",\"nat_keepalive\":true")
      .replacingOccurrences("203.0.113.99/32", "203.0.113.98/32")
    try h.ok(other)
    h.drain()
    #expect(h.gateway.table.initiators.map(\.name) == ["loud"])
    #expect(h.model.record(named: "quiet")?.config.natKeepalive == false)
    let bad = Self.tunnel("bad", inbound: "0x7005", outbound: "0x7006", extra: ",\"nat_keepalive\":\"no\"")
    let e = try #require(Self.refused(h.answer(bad)))
    #expect(e.message.contains("nat_keepalive") && h.model.record(named: "bad") == nil)
  }
}

extension String {
  fileprivate func replacingOccurrences(_ a: String, _ b: String) -> String {
    split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
  }
}
