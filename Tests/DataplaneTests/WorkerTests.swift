// SPDX-License-Identifier: Apache-2.0
// Several workers: who owns which tunnel, how packets are steered to the owner, and the rings
// that carry them there.
import ESP
import Glibc
import Synchronization
import Testing
import UDPEncap

@testable import Dataplane
@testable import Forwarding

@Suite struct WorkerTests {
  let wire = Wire()

  /// Every packet of a tunnel, in either direction, is steered to the same single worker; the
  /// tunnels are spread over the workers; tunnels that share an alias share their owner.
  @Test func everyPacketOfATunnelGoesToItsOwner() throws {
    let workers = 3
    var tunnels = (1...24).map { Fixture.pair($0, mode: .tunnel).gateway }
    let shared = IPAddress("198.51.100.200")!
    let sharing = (30...32).map { Fixture.pair($0, mode: .transport, alias: shared) }
    tunnels += sharing.map(\.gateway)
    let table = try LookupTables(config: Fixture.gatewayConfig(tunnels))
    let pipelines = (0..<workers).map { Pipeline(table: table, worker: $0, workers: workers) }
    var perWorker = [Int](repeating: 0, count: workers)
    for t in table.tunnels {
      let owners = pipelines.filter { $0.owns(t) }.map(\.worker)
      #expect(owners.count == 1, "tunnel \(t.name) has owners \(owners)")
      let owner = owners[0]
      perWorker[owner] += 1
      // Inbound: a datagram with the tunnel's SPI, whichever worker's socket it reached.
      var esp = [UInt8](repeating: 0, count: 64)
      let spi = t.inbound[0].spi
      esp[0] = UInt8(spi >> 24)
      esp[1] = UInt8(spi >> 16 & 0xFF)
      esp[2] = UInt8(spi >> 8 & 0xFF)
      esp[3] = UInt8(spi & 0xFF)
      for p in pipelines { #expect(esp.withUnsafeBytes { p.inboundOwner($0) } == owner) }
      // Outbound: a packet routed into the tunnel (by remote_ts, or to its alias).
      let destination = t.mode == .tunnel ? "\(t.remoteTS[0].address)" : "\(t.alias!)"
      let slot = TestSlot()
      let inner = slot.packet(TestPackets.udp4("198.51.100.1", destination, sport: 1, dport: 2, payload: [1]))
      for p in pipelines { #expect(p.outboundOwner(inner) == owner) }
    }
    #expect(perWorker.allSatisfy { $0 > 0 }, "tunnels per worker: \(perWorker)")
    let sharedOwners = Set(
      table.tunnels.filter { $0.alias == shared }.map { t in pipelines.first { $0.owns(t) }!.worker })
    #expect(sharedOwners.count == 1)
  }

  /// IKE goes to worker 0 (the punt channel's); what a worker can count and drop alone stays.
  @Test func ikeToTheFirstWorkerTheRestStays() throws {
    let table = try LookupTables(config: Fixture.gatewayConfig([Fixture.pair(1, mode: .tunnel).gateway]))
    let p = Pipeline(table: table, worker: 1, workers: 2)
    let ike = [UInt8](repeating: 0, count: 4 + 28)
    #expect(ike.withUnsafeBytes { p.inboundOwner($0) } == 0)
    #expect([UInt8(0xFF)].withUnsafeBytes { p.inboundOwner($0) } == 1)  // NAT-keepalive
    #expect([UInt8](repeating: 0x77, count: 40).withUnsafeBytes { p.inboundOwner($0) } == 1)  // unknown SPI
    #expect([UInt8](repeating: 0, count: 3).withUnsafeBytes { p.inboundOwner($0) } == 1)  // malformed
    let slot = TestSlot()
    let unrouted = slot.packet(TestPackets.udp4("198.51.100.1", "192.0.2.99", sport: 1, dport: 2, payload: []))
    #expect(p.outboundOwner(unrouted) == 1)
    #expect(p.outboundOwner(slot.packet([0x45, 0, 0])) == 1)  // not an IP packet
  }

  /// With two workers each sealing and opening only its own tunnels, a tunnel's traffic flows
  /// end to end, and the other worker's pipeline never touches its SAs.
  @Test func ownersCarryTheirTunnelsEndToEnd() throws {
    let pairs = (1...8).map { Fixture.pair($0, mode: .tunnel) }
    let table = try LookupTables(config: Fixture.gatewayConfig(pairs.map(\.gateway)))
    let pipelines = (0..<2).map { Pipeline(table: table, worker: $0, workers: 2) }
    for (i, pair) in pairs.enumerated() {
      let client = Pipeline(
        table: try LookupTables(
          config: Fixture.clientConfig(pair.client, tunAddress: IPAddress("203.0.113.\(11 + i)")!)))
      let inner = TestPackets.udp4("203.0.113.\(11 + i)", "198.51.100.1", sport: 7, dport: 7, payload: [UInt8(i)])
      let (_, esp, _) = wire.send(inner, on: client)
      let owner = esp.withUnsafeBytes { pipelines[0].inboundOwner($0) }
      let (v, _) = wire.receive(esp, on: pipelines[owner], from: Endpoint(address: Fixture.natIP, port: 40000))
      #expect(v == .decapsulated(tunnel: Int32(i)))
      let reply = TestPackets.udp4("198.51.100.1", "203.0.113.\(11 + i)", sport: 7, dport: 7, payload: [1])
      let slot = TestSlot()
      #expect(pipelines[1 - owner].outboundOwner(slot.packet(reply)) == owner)
      let (v2, _, address) = wire.send(reply, on: pipelines[owner])
      #expect(v2 == .encapsulated(tunnel: Int32(i)) && address?.remote.port == 40000)
    }
    let total = pipelines[0].counters.decapsulated + pipelines[1].counters.decapsulated
    #expect(total == 8 && pipelines.allSatisfy { $0.counters.decapsulated > 0 })
    let merged = WorkerSet.merge(
      pipelines.map { p in
        var r = WorkerStats.Reading()
        r.counters = p.counters
        r.loop.handoffPackets = 1
        r.loop.batchedPackets = UInt64(5 + p.worker)
        return r
      })
    #expect(merged.counters.decapsulated == 8 && merged.counters.encapsulated == 8)
    #expect(merged.loop.handoffPackets == 2 && merged.loop.batchedPackets == 11)
    #expect(merged.workers == [WorkerLoad(packets: 5, handedOver: 1), WorkerLoad(packets: 6, handedOver: 1)])
    #expect(
      merged.statsJSON.contains(
        "\"workers\":[{\"packets\":5,\"handed_over\":1,\"stall_max_ns\":0,\"gap_max_ns\":0},{\"packets\":6,\"handed_over\":1,\"stall_max_ns\":0,\"gap_max_ns\":0}]"
      ))
    #expect(merged.prometheusText().contains("espd_worker_packets_total{worker=\"1\"} 6"))
  }

  /// A learned flow never sends a packet into a tunnel another worker owns: not when it was
  /// learned on the wrong pipeline, and not after a reload moved its tunnel to another alias.
  @Test func flowsNeverCrossOwners() throws {
    let shared = IPAddress("198.51.100.200")!
    var pairs = (1...2).map { Fixture.pair($0, mode: .transport, alias: shared).gateway }
    let config = Fixture.gatewayConfig(pairs)
    let harness = try ControlHarness(config, workers: 2)
    let pipelines = harness.pipelines
    let owner = Tunnel.owner(Tunnel.aliasOwnerKey(shared), workers: 2)
    let slot = TestSlot()
    let reply = slot.packet(TestPackets.udp4("198.51.100.1", "198.51.100.200", sport: 1701, dport: 40000, payload: [1]))
    let header = try #require(IPHeader.parse(reply.bytes))
    let key = FlowKey(alias: shared, proto: IPProtocol.udp, remotePort: 40000, localPort: 1701)
    for p in pipelines { p.flows.learn(key, tunnel: 0) }
    #expect(pipelines[owner].route(header, reply)?.name == "client1")
    #expect(pipelines[1 - owner].route(header, reply) == nil)  // learned there by mistake: not used
    // client1 moves to an alias of its own (another owner may take it): the flow learned on the
    // shared alias is forgotten, and the alias, now client2's alone, routes to client2.
    pairs[0].alias = IPAddress("198.51.100.131")
    _ = try harness.model.reload(Fixture.gatewayConfig(pairs), now: 0).get()
    harness.drain()
    #expect(pipelines.allSatisfy { $0.flows.count == 0 })
    #expect(pipelines[owner].route(header, reply)?.name == "client2")
  }

  /// Time-based lifetimes are checked by the owner only (one writer for the SA's state).
  @Test func lifetimesAreCheckedByTheOwnerOnly() throws {
    var g = Fixture.pair(1, mode: .tunnel).gateway
    var lifetime = Lifetime()
    lifetime.secondsSoft = 1
    lifetime.secondsHard = 2
    g.outbound.lifetime = lifetime
    let table = try LookupTables(config: Fixture.gatewayConfig([g]), now: 0)
    let pipelines = (0..<2).map { Pipeline(table: table, worker: $0, workers: 2) }
    for p in pipelines { p.checkLifetimes(now: 5_000_000_000) }
    let events = pipelines.map { $0.takeEvents().count }
    #expect(events.min() == 0 && events.max()! >= 1, "events per worker: \(events)")
  }

  // MARK: the ring

  @Test func ringKeepsOrderRefusesWhenFullAndOversize() {
    let ring = HandoffRing(capacity: 4, slotSize: 64)
    let a = DatagramAddress(remote: Fixture.gateway, local: Fixture.gateway)
    var bytes = [UInt8](repeating: 0, count: 65)
    #expect(!bytes.withUnsafeBytes { ring.push($0.baseAddress!, count: 65, direction: .inbound, address: a) })
    for i in 0..<4 {
      bytes[0] = UInt8(i)
      #expect(bytes.withUnsafeBytes { ring.push($0.baseAddress!, count: 10 + i, direction: .outbound, address: a) })
    }
    #expect(!bytes.withUnsafeBytes { ring.push($0.baseAddress!, count: 1, direction: .outbound, address: a) })
    #expect(ring.next() == nil)  // nothing published yet
    #expect(ring.publish() && !ring.publish())
    for i in 0..<4 {
      let e = ring.next()
      #expect(e?.count == 10 + i && e?.data.load(as: UInt8.self) == UInt8(i) && e?.direction == .outbound)
      #expect(e?.address == a)
    }
    #expect(ring.next() == nil)
    // Still full until the consumer releases what it read.
    #expect(!bytes.withUnsafeBytes { ring.push($0.baseAddress!, count: 1, direction: .inbound, address: a) })
    ring.release()
    #expect(bytes.withUnsafeBytes { ring.push($0.baseAddress!, count: 1, direction: .inbound, address: a) })
  }

  /// A producer and a consumer thread: every entry arrives once, in order, intact.
  @Test func ringAcrossThreads() throws {
    let ring = HandoffRing(capacity: 256, slotSize: 64)
    let total = 200_000
    let a = DatagramAddress(remote: Fixture.gateway, local: Fixture.gateway)
    let refused = Atomic<Int>(0)
    let producer = try PThread(name: "test-producer") {
      var i = 0
      var value = [UInt8](repeating: 0, count: 16)
      while i < total {
        withUnsafeBytes(of: UInt64(i)) { for k in 0..<8 { value[k] = $0[k]; value[8 + k] = ~$0[k] } }
        if value.withUnsafeBytes({ ring.push($0.baseAddress!, count: 16, direction: .inbound, address: a) }) {
          i += 1
          if i % 32 == 0 { _ = ring.publish() }
        } else {
          _ = ring.publish()
          refused.add(1, ordering: .relaxed)
          sched_yield()
        }
      }
      _ = ring.publish()
    }
    var expected = 0
    var broken = 0
    while expected < total {
      guard let e = ring.next() else {
        ring.release()
        sched_yield()
        continue
      }
      let v = e.data.loadUnaligned(as: UInt64.self)
      let check = e.data.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
      if v != UInt64(expected) || check != ~v || e.count != 16 { broken += 1 }
      expected += 1
      if expected % 64 == 0 { ring.release() }
    }
    ring.release()
    producer.join()
    #expect(broken == 0 && expected == total)
    #expect(ring.next() == nil)
  }
}

/// The eBPF steering program against the kernel (root: bpf(2) needs CAP_BPF), on loopback: a
/// datagram reaches the socket of the worker that owns its SPI, whatever its 4-tuple.
@Suite(.enabled(if: getuid() == 0)) struct SteeringTests {
  @Test func datagramsReachTheSocketOfTheirOwner() throws {
    let workers = 2
    let pairs = (1...8).map { Fixture.pair($0, mode: .tunnel) }
    let table = try LookupTables(config: Fixture.gatewayConfig(pairs.map(\.gateway)))
    let steering = try SPISteering()
    steering.sync(to: table, workers: workers)
    #expect(steering.count == 9 && steering.lookup(0) == 0)
    for (sa, t) in table.inboundSAList {
      #expect(steering.lookup(sa.spi) == UInt32(Tunnel.owner(table.tunnels[Int(t)].ownerKey, workers: workers)))
    }
    // Two SO_REUSEPORT sockets on one loopback port; the program on their group.
    let probe = try UDPSocket(listen: Endpoint(address: IPAddress("127.0.0.1")!, port: 0), mark: nil)
    var found: (Endpoint, [UDPSocket])? = nil
    for k in 0..<50 where found == nil {  // a free port of this process's own choosing
      let local = Endpoint(
        address: IPAddress("127.0.0.1")!, port: UInt16(41000 + (Int(getpid()) * 7 + k * 131) % 20000))
      found = try? (local, (0..<workers).map { _ in try UDPSocket(listen: local, mark: nil, reusePort: true) })
    }
    let (local, group) = try #require(found)
    try steering.attach(to: group[0])
    var expected = [Int](repeating: 0, count: workers)
    for (sa, t) in table.inboundSAList {
      var esp = [UInt8](repeating: 0xAB, count: 64)
      withUnsafeBytes(of: sa.spi.bigEndian) { for i in 0..<4 { esp[i] = $0[i] } }
      for _ in 0..<5 { _ = try esp.withUnsafeBytes { try probe.send($0, to: local, from: local.address) } }
      expected[Tunnel.owner(table.tunnels[Int(t)].ownerKey, workers: workers)] += 5
    }
    // Every datagram from the same 4-tuple: without the program, all would land on one socket.
    let got = group.map { drain($0.fd) }
    #expect(got == expected, "datagrams per socket \(got), owners say \(expected)")
    #expect(expected.allSatisfy { $0 > 0 })
    // Tunnels 5...8 deleted: their SPIs leave the map, one update each.
    for t in table.tunnels.suffix(4) { for sa in t.inbound { steering.remove(sa.spi) } }
    #expect(steering.count == 5 && steering.lookup(table.inboundSAList[7].sa.spi) == nil)
  }

  /// Datagrams waiting on a socket (waits up to 200 ms for the first).
  func drain(_ fd: Int32) -> Int {
    var buffer = [UInt8](repeating: 0, count: 2048)
    var n = 0
    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    _ = poll(&p, 1, 200)
    while recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) >= 0 { n += 1 }
    return n
  }
}
