// SPDX-License-Identifier: Apache-2.0
// The recvmmsg loop and its loop core on in-memory devices and sockets, without root: a client
// behind a NAT and a gateway exchange packets through both loops, rekey through their change
// queues, and the gateway follows the client when its NAT mapping moves (and only then).
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

/// One espd instance on the in-memory network: its pipeline, loop core, loop, device and socket.
final class MemoryInstance {
  let device = MemoryDevice()
  let socket: MemorySocket
  let changes = ChangeQueue()
  let core: LoopCore
  let loop: MMsgLoop

  init(config: Config, host: IPAddress? = nil, on network: MemoryNetwork) throws {
    socket = MemorySocket(local: config.listen[0], host: host, on: network)
    core = LoopCore(
      pipeline: Pipeline(table: try LookupTables(config: config)), device: device, outer: [socket],
      keepaliveSeconds: 0, changes: changes)
    loop = MMsgLoop(core: core, signals: nil)
  }

  var tunnel: Tunnel { core.pipeline.table.slots[0]! }
  func drops(_ r: DropReason) -> UInt64 { core.pipeline.counters.drops[r] }
}

struct LoopSeamTests {
  static let clientHost = Endpoint(address: IPAddress("203.0.113.10")!, port: 4500)
  static let outside = Endpoint(address: Fixture.natIP, port: 40000)
  static let up = TestPackets.udp4("203.0.113.11", "198.51.100.7", sport: 5000, dport: 53, payload: [1, 2, 3])
  static let down = TestPackets.udp4("198.51.100.7", "203.0.113.11", sport: 53, dport: 5000, payload: [4, 5, 6, 7])

  /// A client behind a NAT (203.0.113.10:4500 seen as 203.0.113.50:40000) and the gateway.
  static func lab() throws -> (MemoryNetwork, client: MemoryInstance, gateway: MemoryInstance) {
    let network = MemoryNetwork()
    network.nat[clientHost] = outside
    let (c, g) = Fixture.pair(1, mode: .tunnel)
    let client = try MemoryInstance(
      config: Fixture.clientConfig(c, tunAddress: IPAddress("203.0.113.11")!), host: clientHost.address,
      on: network)
    let gateway = try MemoryInstance(config: Fixture.gatewayConfig([g]), on: network)
    return (network, client, gateway)
  }

  /// `packet` into `from`'s TUN, through both loops; what `to` wrote to its TUN.
  static func carry(_ packet: [UInt8], from: MemoryInstance, to: MemoryInstance) -> [[UInt8]] {
    from.device.toLoop.append(packet)
    from.loop.step()
    to.loop.step()
    return to.device.take()
  }

  static func spi(_ d: Datagram) -> UInt32 {
    d.bytes.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
  }

  @Test func twoInstancesExchangePacketsThroughTheirLoops() throws {
    let (network, client, gateway) = try Self.lab()
    #expect(Self.carry(Self.up, from: client, to: gateway) == [Self.up])
    // The gateway learned the client's outside address from the authenticated packet.
    #expect(gateway.tunnel.peer == Self.outside)
    #expect(network.sent.last?.to == Fixture.gateway && Self.spi(network.sent.last!) == 0x1001)
    #expect(Self.carry(Self.down, from: gateway, to: client) == [Self.down])
    #expect(network.sent.last?.to == Self.outside && Self.spi(network.sent.last!) == 0x2001)
    #expect(network.undeliverable == 0)
    #expect(client.core.batches == 2 && gateway.core.batches == 2)
  }

  @Test func aRekeyThroughTheChangeQueuesKeepsTrafficFlowing() throws {
    let (network, client, gateway) = try Self.lab()
    #expect(Self.carry(Self.up, from: client, to: gateway) == [Self.up])
    let oldUp = network.sent.last!
    // New SAs both ways: inbound first on each side, then the senders switch, then the old go.
    let upSA = Fixture.sa(0x1101, .aes128gcm16, seed: 7)
    let downSA = Fixture.sa(0x2101, .aes128gcm16, seed: 8)
    gateway.changes.push([.addInbound(gateway.tunnel, try LookupTables.makeInbound(upSA, now: 0))])
    client.changes.push([.addInbound(client.tunnel, try LookupTables.makeInbound(downSA, now: 0))])
    client.changes.push([.setOutbound(client.tunnel, try LookupTables.makeOutbound(upSA, now: 0))])
    #expect(Self.carry(Self.up, from: client, to: gateway) == [Self.up])
    #expect(Self.spi(network.sent.last!) == 0x1101)
    gateway.changes.push([.setOutbound(gateway.tunnel, try LookupTables.makeOutbound(downSA, now: 0))])
    #expect(Self.carry(Self.down, from: gateway, to: client) == [Self.down])
    #expect(Self.spi(network.sent.last!) == 0x2101)
    // The old inbound SA leaves: a datagram under it is now an unknown SPI, and nothing else moves.
    gateway.changes.push([.removeInbound(gateway.tunnel, spi: 0x1001)])
    gateway.loop.step()
    network.send(oldUp.bytes, from: Self.clientHost, to: Fixture.gateway)
    gateway.loop.step()
    #expect(gateway.device.take().isEmpty && gateway.drops(.unknownSPI) == 1)
    #expect(Self.carry(Self.up, from: client, to: gateway) == [Self.up])
    #expect(client.changes.pushed == 2 && gateway.changes.pushed == 3)
  }

  @Test func theGatewayFollowsARebindingButNotAForgery() throws {
    let (network, client, gateway) = try Self.lab()
    #expect(Self.carry(Self.up, from: client, to: gateway) == [Self.up])
    // A forged datagram (an authentic one with a later sequence number, so its ICV no longer
    // matches) from elsewhere moves nothing.
    var forged = network.sent.last!.bytes
    forged[7] &+= 100
    let elsewhere = Endpoint(address: IPAddress("198.51.100.99")!, port: 4500)
    let attacker = MemorySocket(local: elsewhere, on: network)
    network.send(forged, from: attacker.local, to: Fixture.gateway)
    gateway.loop.step()
    #expect(gateway.drops(.authFailed) == 1 && gateway.tunnel.peer == Self.outside)
    // The NAT maps the client to another port: the next authentic packet moves the peer, and the
    // gateway's answer goes to the new mapping (the old one no longer reaches the client).
    let moved = Endpoint(address: Fixture.natIP, port: 40001)
    network.nat[Self.clientHost] = moved
    #expect(Self.carry(Self.up, from: client, to: gateway) == [Self.up])
    #expect(gateway.tunnel.peer == moved)
    #expect(Self.carry(Self.down, from: gateway, to: client) == [Self.down])
    #expect(network.sent.last?.to == moved && network.undeliverable == 0)
  }
}
