// SPDX-License-Identifier: Apache-2.0
// A reload (SIGHUP) applies only the difference: unchanged SAs keep their state, changed ones start anew.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct ReloadTests {
  let wire = Wire()

  @Test func unchangedSAsKeepStateAndChangedOnesAreNew() throws {
    let pairs = (1...3).map { Fixture.pair($0, mode: .tunnel) }
    let config1 = Fixture.gatewayConfig(pairs.map(\.gateway))
    let harness = try ControlHarness(config1)
    let gateway = harness.gateway
    var clients = try pairs.map {
      Pipeline(
        table: try LookupTables(
          config: Fixture.clientConfig($0.client, tunAddress: IPAddress("203.0.113.1\($0.client.outbound.spi & 0xF)")!))
      )
    }
    // Traffic from every client: the gateway learns three peers and advances three windows.
    for (i, c) in clients.enumerated() {
      let inner = TestPackets.udp4("203.0.113.1\(i + 1)", "198.51.100.1", sport: 1, dport: 2, payload: [UInt8(i)])
      for _ in 0..<3 {
        let (_, esp, _) = wire.send(inner, on: c)
        #expect(
          wire.receive(esp, on: gateway, from: Endpoint(address: Fixture.natIP, port: UInt16(31000 + i))).0
            == .decapsulated(tunnel: Int32(i)))
      }
    }
    let before = gateway.table
    // Client 2 restarts with new SAs; the gateway's config changes for tunnel client2 only.
    var restarted = Fixture.pair(2, mode: .tunnel)
    restarted.gateway.inbound = [Fixture.sa(0x3002, .aes128gcm16, seed: 77)]
    restarted.gateway.outbound = Fixture.sa(0x4002, .aes128gcm16, seed: 78)
    restarted.client.outbound = restarted.gateway.inbound[0]
    restarted.client.inbound = [restarted.gateway.outbound]
    var config2 = config1
    config2.tunnels[1] = restarted.gateway
    let untouched = (before.tunnels[0], before.tunnels[2])
    let beforeTunnels = before.tunnels
    let summary = try harness.model.reload(config2, now: 0).get()
    #expect(summary.changed == 1 && summary.unchanged == 2 && summary.added == 0 && summary.removed == 0)
    harness.drain()
    let after = gateway.table
    #expect(after.tunnels[0] === untouched.0 && after.tunnels[2] === untouched.1)  // not even touched
    #expect(after.tunnels[1] !== beforeTunnels[1])

    #expect(after.tunnels[1].inbound[0] !== beforeTunnels[1].inbound[0])
    #expect(after.tunnels[1].inbound[0].spi == 0x3002)
    #expect(after.tunnels[0].peer == Endpoint(address: Fixture.natIP, port: 31000))  // learned peer kept
    #expect(after.tunnels[1].peer == nil)  // every SA new: a restarted peer, its old NAT port is not trusted
    #expect(after.tunnels[0].counters.packetsIn == 3)
    #expect(after.tunnels[0].inbound[0].replay.highest == 3)

    // The old client-2 SA is gone; the other clients go on without a hitch (and replays stay replays).
    let (_, oldESP, _) = wire.send(
      TestPackets.udp4("203.0.113.12", "198.51.100.1", sport: 1, dport: 2, payload: [9]), on: clients[1])
    #expect(
      wire.receive(oldESP, on: gateway, from: Endpoint(address: Fixture.natIP, port: 31001)).0 == .dropped(.unknownSPI))
    clients[1] = Pipeline(
      table: try LookupTables(config: Fixture.clientConfig(restarted.client, tunAddress: IPAddress("203.0.113.12")!)))
    let (_, newESP, _) = wire.send(
      TestPackets.udp4("203.0.113.12", "198.51.100.1", sport: 1, dport: 2, payload: [9]), on: clients[1])
    #expect(
      wire.receive(newESP, on: gateway, from: Endpoint(address: Fixture.natIP, port: 40001)).0
        == .decapsulated(tunnel: 1))
    #expect(gateway.table.tunnels[1].peer?.port == 40001)
    let (_, esp0, _) = wire.send(
      TestPackets.udp4("203.0.113.11", "198.51.100.1", sport: 1, dport: 2, payload: [1]), on: clients[0])
    #expect(
      wire.receive(esp0, on: gateway, from: Endpoint(address: Fixture.natIP, port: 31000)).0 == .decapsulated(tunnel: 0)
    )
    #expect(gateway.table.tunnels[0].inbound[0].replay.highest == 4)
  }

  /// Tunnels sharing an alias: the flows learned before a reload still steer replies after it,
  /// and the flows of a tunnel that the reload removed are forgotten.
  @Test func learnedFlowsSurviveAReload() throws {
    let alias = IPAddress("198.51.100.130")!
    let pairs = (1...3).map { Fixture.pair($0, mode: .transport, alias: alias) }
    let config1 = Fixture.gatewayConfig(pairs.map(\.gateway))
    let harness = try ControlHarness(config1)
    let gateway = harness.gateway
    for (i, p) in pairs.enumerated() {
      let client = Pipeline(
        table: try LookupTables(config: Fixture.clientConfig(p.client, tunAddress: IPAddress("192.0.2.200")!)))
      let pkt = TestPackets.udp4(
        "192.0.2.200", "198.51.100.1", sport: UInt16(1701 + i), dport: 1701, payload: [UInt8(i)])
      let (_, esp, _) = wire.send(pkt, on: client)
      #expect(
        wire.receive(esp, on: gateway, from: Endpoint(address: Fixture.natIP, port: UInt16(31000 + i))).0
          == .decapsulated(tunnel: Int32(i)))
    }
    // Reload: tunnel client1 is removed; client2 and client3 keep their slots 1 and 2.
    var config2 = config1
    config2.tunnels.removeFirst()
    _ = try harness.model.reload(config2, now: 0).get()
    harness.drain()
    for (i, port) in [(1, 1702), (2, 1703)] {
      let reply = TestPackets.udp4("198.51.100.1", "198.51.100.130", sport: 1701, dport: UInt16(port), payload: [7])
      let (v, _, addr) = wire.send(reply, on: gateway)
      #expect(v == .encapsulated(tunnel: Int32(i)))
      #expect(addr?.remote.port == UInt16(31000 + i))
    }
    let toRemoved = TestPackets.udp4("198.51.100.1", "198.51.100.130", sport: 1701, dport: 1701, payload: [7])
    #expect(wire.send(toRemoved, on: gateway).0 == .dropped(.noRoute))
  }
}

/// The settings a reload cannot change, from their one table: the check, the warning and what is kept.
@Suite struct RestartOnlyTests {
  @Test func warningNamesEverySetting() {
    #expect(
      Config.restartOnlyWarning
        == "reload: changes to listen, tun, ike, control, metrics, transport_alias_pool, udp_receive_buffer, udp_send_buffer or the IKE limits need a restart; applying the tunnels, nat_keepalive_seconds, metrics_per_tunnel and the other limits only"
    )
  }

  @Test func eachChangeIsSeenAndKept() {
    let old = Fixture.gatewayConfig([Fixture.pair(1, mode: .tunnel).gateway])
    let edits: [(String, (inout Config) -> Void)] = [
      ("listen", { $0.listen.append(Endpoint(address: IPAddress("192.0.2.9")!, port: 4501)) }),
      ("tun", { $0.tun.mtu += 1 }), ("tun", { $0.tun.name = "other0" }),
      ("ike", { $0.ikeListen = [Endpoint(address: IPAddress("192.0.2.9")!, port: 500)] }),
      ("control", { $0.control += ".new" }),
      ("metrics", { $0.metrics = Endpoint(address: IPAddress("127.0.0.1")!, port: 9999) }),
      ("transport_alias_pool", { $0.transportAliasPool = Prefix(address: IPAddress("198.51.100.128")!, length: 28) }),
      ("udp_receive_buffer", { $0.udpReceiveBuffer += 1 }), ("udp_send_buffer", { $0.udpSendBuffer += 1 }),
      ("the IKE limits", { $0.limits.ikeQueueBytes += 1 }), ("the IKE limits", { $0.limits.ikePerSecond += 1 }),
      ("the IKE limits", { $0.limits.ikePerSourcePerSecond += 1 }),
    ]
    for (name, edit) in edits {
      var new = old
      edit(&new)
      new.natKeepaliveSeconds = 7
      new.metricsPerTunnel = false
      new.limits.tunnels = 5
      new.limits.controlConnections = 3
      #expect(old.restartOnlyChanges(in: new).map(\.name) == [name])
      let applied = old.keepingRestartOnly(of: new)
      #expect(old.restartOnlyChanges(in: applied).isEmpty, "\(name)")
      // The reloadable settings come from the new file.
      #expect(applied.natKeepaliveSeconds == 7 && !applied.metricsPerTunnel, "\(name)")
      #expect(applied.limits.tunnels == 5 && applied.limits.controlConnections == 3, "\(name)")
    }
    var reloadable = old
    reloadable.natKeepaliveSeconds += 1
    reloadable.limits.sas = 9
    reloadable.tunnels = []
    reloadable.tun.txQueueLength += 1
    #expect(old.restartOnlyChanges(in: reloadable).isEmpty)
  }
}
