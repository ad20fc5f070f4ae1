// SPDX-License-Identifier: Apache-2.0
// Builds mirrored client/gateway configurations and packets for the pipeline tests.
import ESP

@testable import Dataplane
@testable import Forwarding

enum Fixture {
  static let gateway = Endpoint(address: IPAddress("192.0.2.1")!, port: 4500)
  static let natIP = IPAddress("203.0.113.50")!
  static let gatewayTun = IPAddress("198.51.100.1")!

  static func key(_ alg: ESPAlgorithm, _ seed: Int) -> [UInt8] {
    (0..<alg.keyLength).map { UInt8(truncatingIfNeeded: $0 * 31 + seed) }
  }
  static func authKey(_ alg: ESPAlgorithm, _ seed: Int) -> [UInt8] {
    (0..<alg.authKeyLength).map { UInt8(truncatingIfNeeded: $0 * 17 + seed) }
  }
  static func sa(_ spi: UInt32, _ alg: ESPAlgorithm, seed: Int, window: Int = 1024) -> SAConfig {
    SAConfig(spi: spi, algorithm: alg, key: key(alg, seed), authKey: authKey(alg, seed), replayWindow: window)
  }

  /// A client i behind the NAT and the gateway's matching tunnel. Client → gateway SPI 0x1000+i,
  /// gateway → client SPI 0x2000+i.
  static func pair(
    _ i: Int, mode: TunnelMode, alg: ESPAlgorithm = .aes128gcm16, alias: IPAddress? = nil,
    clientInner: Prefix? = nil, window: Int = 1024
  ) -> (client: TunnelConfig, gateway: TunnelConfig) {
    let up = sa(UInt32(0x1000 + i), alg, seed: i, window: window)
    let down = sa(UInt32(0x2000 + i), alg, seed: 100 + i, window: window)
    let inner = clientInner ?? Prefix(address: IPAddress("203.0.113.\(10 + i)")!, length: 32)
    let client = TunnelConfig(
      name: "gw", mode: mode, peer: gateway,
      remoteTS: mode == .tunnel ? [Prefix(address: IPAddress("198.51.100.0")!, length: 24)] : [],
      alias: mode == .transport ? IPAddress("198.51.100.1") : nil, inbound: [down], outbound: up)
    let gw = TunnelConfig(
      name: "client\(i)", mode: mode, peer: nil, remoteTS: mode == .tunnel ? [inner] : [],
      alias: mode == .transport ? (alias ?? IPAddress("198.51.100.\(130 + i)")) : nil, inbound: [up],
      outbound: down)
    return (client, gw)
  }

  static func gatewayConfig(_ tunnels: [TunnelConfig]) -> Config {
    Config(
      listen: [gateway], tun: TunConfig(addresses: [Prefix(address: gatewayTun, length: 24)]), tunnels: tunnels)
  }

  static func clientConfig(_ t: TunnelConfig, tunAddress: IPAddress) -> Config {
    Config(
      listen: [Endpoint(address: .v4(0), port: 4500)],
      tun: TunConfig(addresses: [Prefix(address: tunAddress, length: 32)]),
      tunnels: [t])
  }
}

/// A packet slot for tests.
final class TestSlot {
  static let size = 4096
  let base = UnsafeMutableRawPointer.allocate(byteCount: TestSlot.size, alignment: 16)
  deinit { base.deallocate() }
  func packet(_ bytes: [UInt8]) -> PacketBuffer {
    var p = PacketBuffer(base: base, capacity: TestSlot.size, start: DataplaneConstants.headroom, count: 0)
    _ = bytes.withUnsafeBytes { p.assign($0, at: DataplaneConstants.headroom) }
    return p
  }
}

enum TestPackets {
  static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

  /// An IPv4 UDP packet with a valid header checksum (UDP checksum 0: "none").
  static func udp4(_ src: String, _ dst: String, sport: UInt16, dport: UInt16, payload: [UInt8]) -> [UInt8] {
    let s = IPAddress(src)!.bytes
    let d = IPAddress(dst)!.bytes
    let seg = be16(sport) + be16(dport) + be16(UInt16(8 + payload.count)) + [0, 0] + payload
    var h: [UInt8] = [0x45, 0] + be16(UInt16(20 + seg.count)) + [0, 1, 0, 0, 64, 17, 0, 0] + s + d
    var sum: UInt32 = 0
    for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(h[i]) << 8 | UInt32(h[i + 1]) }
    while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
    let c = ~UInt16(sum)
    h[10] = UInt8(c >> 8)
    h[11] = UInt8(c & 0xFF)
    return h + seg
  }
}

/// Runs a packet through one side's outbound path and the other side's inbound path.
struct Wire {
  let slot = TestSlot()

  /// Encapsulates `inner` on `from`; returns the verdict and, if sealed, the ESP bytes and addressing.
  func send(_ inner: [UInt8], on from: Pipeline) -> (Verdict, [UInt8], DatagramAddress?) {
    var p = slot.packet(inner)
    var a = DatagramAddress(remote: Endpoint(address: .v4(0), port: 0), local: Endpoint(address: .v4(0), port: 0))
    let v = from.outbound(&p, address: &a)
    guard case .encapsulated = v else { return (v, [], nil) }
    return (v, Array(p.bytes), a)
  }

  /// Delivers ESP bytes to `to` as if they came from `remote` (after any NAT) to `local`.
  func receive(_ esp: [UInt8], on to: Pipeline, from remote: Endpoint, at local: Endpoint = Fixture.gateway) -> (
    Verdict, [UInt8]
  ) {
    var p = slot.packet(esp)
    let v = to.inbound(&p, address: DatagramAddress(remote: remote, local: local))
    return (v, Array(p.bytes))
  }
}
