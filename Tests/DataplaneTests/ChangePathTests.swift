// SPDX-License-Identifier: Apache-2.0
// The control path at run time: a change reaches the workers only through their queues, touches
// only what it names, is safe against packets in flight, and runs beside a forwarding worker while
// stats are read (this suite also runs under ThreadSanitizer: scripts/sanitizers.sh).
import ESP
import Glibc
import Synchronization
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct ChangePathTests {
  static func hex(_ bytes: [UInt8]) -> String {
    bytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined()
  }

  static func endpoint(_ port: Int) -> Endpoint { Endpoint(address: Fixture.natIP, port: UInt16(port)) }

  /// Client pipelines for pairs, each with its own inner address 203.0.113.1x.
  static func clients(_ pairs: [(client: TunnelConfig, gateway: TunnelConfig)]) throws -> [Pipeline] {
    try pairs.enumerated().map { i, p in
      Pipeline(
        table: try LookupTables(config: Fixture.clientConfig(p.client, tunAddress: IPAddress("203.0.113.1\(i + 1)")!)))
    }
  }

  static func up(_ i: Int, _ payload: UInt8 = 0) -> [UInt8] {
    TestPackets.udp4("203.0.113.1\(i + 1)", "198.51.100.1", sport: 1, dport: 2, payload: [payload])
  }

  static func down(_ i: Int) -> [UInt8] {
    TestPackets.udp4("198.51.100.1", "203.0.113.1\(i + 1)", sport: 2, dport: 1, payload: [7])
  }

  @Test func aChangeReachesTheWorkerOnlyThroughItsQueueAndTouchesOnlyItsTunnel() throws {
    let wire = Wire()
    let pairs = (1...3).map { Fixture.pair($0, mode: .tunnel) }
    let harness = try ControlHarness(Fixture.gatewayConfig(pairs.map(\.gateway)))
    let gateway = harness.gateway
    let clients = try Self.clients(pairs)
    var sent: [[UInt8]] = []
    for (i, c) in clients.enumerated() {
      for k in 0..<3 {
        let (_, esp, _) = wire.send(Self.up(i, UInt8(k)), on: c)
        if i == 0 { sent.append(esp) }
        #expect(wire.receive(esp, on: gateway, from: Self.endpoint(31000 + i)).0 == .decapsulated(tunnel: Int32(i)))
        #expect(wire.send(Self.down(i), on: gateway).0 == .encapsulated(tunnel: Int32(i)))
      }
    }
    let others = [0, 2].map { gateway.table.slots[$0]! }
    let otherSAs = others.map { ($0.inbound.map { ObjectIdentifier($0) }, ObjectIdentifier($0.outbound)) }

    // client2 rekeys: its new SPI is unknown until the worker takes its queue.
    let newUp = Fixture.sa(0x7002, .aes128gcm16, seed: 55)
    let newDown = Fixture.sa(0x7003, .aes128gcm16, seed: 56)
    var rekeyed = pairs[1].client
    rekeyed.outbound = newUp
    rekeyed.inbound = [newDown]
    let client2 = Pipeline(
      table: try LookupTables(config: Fixture.clientConfig(rekeyed, tunAddress: IPAddress("203.0.113.12")!)))
    let sa = { (s: SAConfig) in
      "{\"spi\":\"0x\(String(s.spi, radix: 16))\",\"alg\":\"aes128gcm16\",\"key\":\"\(ChangePathTests.hex(s.key))\"}"
    }
    try harness.request("{\"op\":\"rekey\",\"name\":\"client2\",\"inbound\":\(sa(newUp))}").get()
    let (_, early, _) = wire.send(Self.up(1), on: client2)
    #expect(wire.receive(early, on: gateway, from: Self.endpoint(31001)).0 == .dropped(.unknownSPI))
    harness.drain()
    let (_, onTime, _) = wire.send(Self.up(1), on: client2)
    #expect(wire.receive(onTime, on: gateway, from: Self.endpoint(31001)).0 == .decapsulated(tunnel: 1))
    try harness.request("{\"op\":\"rekey\",\"name\":\"client2\",\"outbound\":\(sa(newDown))}").get()
    try harness.request("{\"op\":\"delete_sa\",\"spi\":\"0x1002\"}").get()
    let extra = Fixture.pair(4, mode: .tunnel).gateway
    try harness.model.add(extra, now: 0).get()
    try harness.model.delete(name: "client4").get()
    harness.drain()
    #expect(gateway.table.slots[1]!.inbound.map(\.spi) == [0x7002] && gateway.table.slots[1]!.outbound.spi == 0x7003)
    #expect(gateway.table.tunnelCount == 3 && !gateway.table.hasInboundSA(spi: 0x1002))

    // The other tunnels: the same objects, state going on where it was.
    for (k, t) in others.enumerated() {
      #expect(gateway.table.slots[Int(t.index)] === t)
      #expect(t.inbound.map { ObjectIdentifier($0) } == otherSAs[k].0 && ObjectIdentifier(t.outbound) == otherSAs[k].1)
      #expect(t.inbound[0].replay.highest == 3 && t.outbound.sequenceNumber == 3)
      #expect(t.peer == Self.endpoint(31000 + Int(t.index)) && t.counters.packetsIn == 3 && t.counters.packetsOut == 3)
    }
    #expect(wire.receive(sent[1], on: gateway, from: Self.endpoint(31000)).0 == .dropped(.replayed))
    let (_, next, _) = wire.send(Self.up(0, 9), on: clients[0])
    #expect(wire.receive(next, on: gateway, from: Self.endpoint(31000)).0 == .decapsulated(tunnel: 0))
    #expect(others[0].inbound[0].replay.highest == 4)
  }

  @Test func learnedFlowsOfOtherTunnelsSurviveChanges() throws {
    let wire = Wire()
    let alias = IPAddress("198.51.100.130")!
    let pairs = (1...3).map { Fixture.pair($0, mode: .transport, alias: alias) }
    let harness = try ControlHarness(Fixture.gatewayConfig(pairs.map(\.gateway)))
    let gateway = harness.gateway
    for (i, p) in pairs.enumerated() {
      let client = Pipeline(
        table: try LookupTables(config: Fixture.clientConfig(p.client, tunAddress: IPAddress("192.0.2.200")!)))
      let pkt = TestPackets.udp4("192.0.2.200", "198.51.100.1", sport: UInt16(1701 + i), dport: 1701, payload: [1])
      let (_, esp, _) = wire.send(pkt, on: client)
      #expect(wire.receive(esp, on: gateway, from: Self.endpoint(31000 + i)).0 == .decapsulated(tunnel: Int32(i)))
    }
    #expect(gateway.table.slots.allSatisfy { $0?.sharesAlias == true })
    try harness.request("{\"op\":\"delete_tunnel\",\"name\":\"client3\"}").get()
    try harness.model.add(Fixture.pair(5, mode: .transport).gateway, now: 0).get()
    try harness.request(
      "{\"op\":\"rekey\",\"name\":\"client1\",\"inbound\":{\"spi\":\"0x7777\",\"alg\":\"aes128gcm16\",\"key\":\"\(String(repeating: "ab", count: 20))\"}}"
    ).get()
    harness.drain()
    for (i, port) in [(0, 1701), (1, 1702)] {
      let reply = TestPackets.udp4("198.51.100.1", "198.51.100.130", sport: 1701, dport: UInt16(port), payload: [7])
      let (v, _, addr) = wire.send(reply, on: gateway)
      #expect(v == .encapsulated(tunnel: Int32(i)) && addr?.remote.port == UInt16(31000 + i))
    }
    // client3's flow went with it, and its slot went to client5 (an alias of its own).
    let toGone = TestPackets.udp4("198.51.100.1", "198.51.100.130", sport: 1701, dport: 1703, payload: [7])
    #expect(wire.send(toGone, on: gateway).0 == .dropped(.noRoute))
    #expect(gateway.table.slots[2]?.name == "client5")
    // Two tunnels left on the alias: still shared.
    #expect(gateway.table.slots[0]!.sharesAlias && gateway.table.slots[1]!.sharesAlias)
    try harness.request("{\"op\":\"delete_tunnel\",\"name\":\"client2\"}").get()
    harness.drain()
    #expect(!gateway.table.slots[0]!.sharesAlias)  // alone on its alias again: routed by the alias itself
    let any = TestPackets.udp4("198.51.100.1", "198.51.100.130", sport: 1701, dport: 9999, payload: [7])
    #expect(wire.send(any, on: gateway).0 == .encapsulated(tunnel: 0))
  }

  /// A batch collected before a change and processed after it (the loop applies queued changes
  /// before each batch): the packets of a deleted tunnel are counted drops, nothing else happens.
  @Test func deletingWhilePacketsForItAreInABatchIsSafe() throws {
    let wire = Wire()
    let pairs = (1...2).map { Fixture.pair($0, mode: .tunnel) }
    let harness = try ControlHarness(Fixture.gatewayConfig(pairs.map(\.gateway)))
    let gateway = harness.gateway
    let clients = try Self.clients(pairs)
    let batch = (0..<4).map { k in wire.send(Self.up(0, UInt8(k)), on: clients[0]).1 }
    try harness.request("{\"op\":\"delete_tunnel\",\"name\":\"client1\"}").get()
    harness.drain()
    for esp in batch { #expect(wire.receive(esp, on: gateway, from: Self.endpoint(31000)).0 == .dropped(.unknownSPI)) }
    #expect(gateway.table.slots[0] == nil && gateway.counters.drops[.unknownSPI] == 4)
    // A reply routed to it finds no tunnel; the other tunnel goes on.
    #expect(wire.send(Self.down(0), on: gateway).0 == .dropped(.noRoute))
    let (_, esp, _) = wire.send(Self.up(1), on: clients[1])
    #expect(wire.receive(esp, on: gateway, from: Self.endpoint(31001)).0 == .decapsulated(tunnel: 1))
    // delete_sa of the SA in use while a batch holds its packets: the same.
    try harness.request(
      "{\"op\":\"rekey\",\"name\":\"client2\",\"inbound\":{\"spi\":\"0x9999\",\"alg\":\"aes128gcm16\",\"key\":\"\(String(repeating: "cd", count: 20))\"}}"
    ).get()
    harness.drain()
    let held = wire.send(Self.up(1, 3), on: clients[1]).1
    try harness.request("{\"op\":\"delete_sa\",\"spi\":\"0x1002\"}").get()
    harness.drain()
    #expect(wire.receive(held, on: gateway, from: Self.endpoint(31001)).0 == .dropped(.unknownSPI))
  }

  @Test func tablesGrowThroughTheQueue() throws {
    let harness = try ControlHarness(Fixture.gatewayConfig([]))
    for i in 0..<300 {
      var t = Fixture.pair(1, mode: .tunnel).gateway
      t.name = "t\(i)"
      t.remoteTS = [Prefix(address: .v6(0x2001_0db8_0000_0000, UInt64(i) + 1), length: 128)]
      t.inbound = [Fixture.sa(UInt32(0x10000 + i), .aes128gcm16, seed: i)]
      t.outbound = Fixture.sa(UInt32(0x20000 + i), .aes128gcm16, seed: i)
      try harness.model.add(t, now: 0).get()
      if i % 7 == 0 { harness.drain() }
    }
    harness.drain()
    #expect(harness.model.tableGrowths >= 3)
    let table = harness.gateway.table
    #expect(table.tunnelCount == 300 && table.spiIndex.count == 300 && table.routes.count6 == 300)
    #expect((0..<300).allSatisfy { table.hasInboundSA(spi: UInt32(0x10000 + $0)) })
    #expect(table.routes.lookup(.v6(0x2001_0db8_0000_0000, 300)) == 299)
    for i in 0..<300 where i % 2 == 0 { try harness.model.delete(name: "t\(i)").get() }
    harness.drain()
    #expect(table.spiIndex.count == 150 && table.routes.count6 == 150)
    #expect((0..<300).allSatisfy { table.hasInboundSA(spi: UInt32(0x10000 + $0)) == ($0 % 2 == 1) })
  }

  @Test func aReloadQueuesTheKeepaliveInterval() throws {
    let pairs = [Fixture.pair(1, mode: .tunnel)]
    var config = Fixture.gatewayConfig(pairs.map(\.gateway))
    let harness = try ControlHarness(config)
    config.natKeepaliveSeconds = 5
    let summary = try harness.model.reload(config, now: 0).get()
    #expect(summary.unchanged == 1 && harness.model.base.natKeepaliveSeconds == 5)
    let queued = harness.queues[0].take()
    #expect(queued.contains { if case .keepalive(5_000_000_000) = $0 { true } else { false } })
  }

  /// A worker thread forwards while the control thread changes other tunnels and reads every
  /// counter (TSan: no race; the packets all arrive; what the reader sees only grows).
  @Test func changesAndReadsBesideAForwardingWorker() throws {
    let pairs = (1...2).map { Fixture.pair($0, mode: .tunnel) }
    let harness = try ControlHarness(Fixture.gatewayConfig(pairs.map(\.gateway)))
    let clients = try Self.clients(pairs)
    let wire = Wire()
    let count = 3000
    let packets = (0..<count).map { k in wire.send(Self.up(0, UInt8(truncatingIfNeeded: k)), on: clients[0]).1 }
    let gateway = harness.gateway
    let queue = harness.queues[0]
    let done = Atomic<Int>(0)
    let worker = try PThread(name: "test-worker") {
      let own = Wire()
      var ok = 0
      for (k, esp) in packets.enumerated() {
        if queue.hasPending { ControlHarness.drain(queue, into: gateway) }
        if own.receive(esp, on: gateway, from: Self.endpoint(31000)).0 == .decapsulated(tunnel: 0) { ok += 1 }
        if k % 50 == 0 { _ = own.send(Self.down(0), on: gateway) }
      }
      ControlHarness.drain(queue, into: gateway)
      done.store(ok, ordering: .releasing)
    }
    var lastIn: UInt64 = 0
    var lastSA: UInt64 = 0
    var spi: UInt32 = 0x1002
    for k in 0..<200 {
      let key = String(repeating: ChangePathTests.hex([UInt8(k & 0xFF)]), count: 20)
      let next = UInt32(0x50000 + k)
      try harness.request(
        "{\"op\":\"rekey\",\"name\":\"client2\",\"inbound\":{\"spi\":\"0x\(String(next, radix: 16))\",\"alg\":\"aes128gcm16\",\"key\":\"\(key)\"}}"
      ).get()
      try harness.request(
        "{\"op\":\"rekey\",\"name\":\"client2\",\"outbound\":{\"spi\":\"0x\(String(0x60000 + k, radix: 16))\",\"alg\":\"aes128gcm16\",\"key\":\"\(key)\"}}"
      ).get()
      try harness.request("{\"op\":\"delete_sa\",\"spi\":\"0x\(String(spi, radix: 16))\"}").get()
      spi = next
      var t = Fixture.pair(3, mode: .tunnel).gateway
      t.name = "x\(k)"
      t.remoteTS = [Prefix(address: .v6(0x2001_0db8_0000_0000, UInt64(k) + 1), length: 128)]
      t.inbound = [Fixture.sa(UInt32(0x70000 + k), .aes128gcm16, seed: k)]
      t.outbound = Fixture.sa(UInt32(0x80000 + k), .aes128gcm16, seed: k)
      try harness.model.add(t, now: 0).get()
      if k > 0 { try harness.model.delete(name: "x\(k - 1)").get() }
      // The reader's view: counters only grow, the list shows what the model holds.
      let snapshots = harness.model.records.map {
        TunnelSnapshot($0.tunnel, inbound: $0.inbound, outbound: $0.outbound)
      }
      let first = try #require(snapshots.first)
      // (Each word is read atomically; the set is not one instant: each only grows.)
      #expect(first.counters.packetsIn >= lastIn && first.inbound[0].packets >= lastSA)
      lastIn = first.counters.packetsIn
      lastSA = first.inbound[0].packets
      _ = first.peer
    }
    worker.join()
    harness.drain()  // what was queued after the worker's last batch (its thread is gone: ours now)
    #expect(done.load(ordering: .acquiring) == count)
    let t0 = try #require(harness.model.record(named: "client1"))
    #expect(t0.tunnel.counters.packetsIn == UInt64(count) && t0.inbound[0].packets == UInt64(count))
    #expect(SASummary(t0.inbound[0]).sequence == UInt64(count))
    #expect(gateway.table.slots[1]!.inbound.map(\.spi) == [spi] && gateway.counters.drops.total == 0)
    #expect(t0.tunnel.publishedPeer == Self.endpoint(31000))
  }
}
