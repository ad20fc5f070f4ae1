// SPDX-License-Identifier: Apache-2.0
// A gateway configuration with one tunnel per kind of SA the inbound path treats differently, the
// peers' matching outbound SAs (so a target can build authentic packets), and a snapshot of every
// piece of state an unauthenticated packet must leave alone.
@testable import Dataplane
@testable import ESP
@testable import Forwarding

/// The gateway the inbound-path targets run.
public enum FuzzGateway {
  public static let listen = Endpoint(address: IPAddress("192.0.2.1")!, port: 4500)
  public static let tunV4 = IPAddress("198.51.100.1")!
  public static let tunV6 = IPAddress("2001:db8:1::1")!

  /// One tunnel's shape: name, mode, algorithm, ESN, window, SPIs, inner prefix or alias, peer.
  public struct Shape: Sendable {
    public let name: String
    public let mode: TunnelMode
    public let algorithm: ESPAlgorithm
    public let esn: Bool
    public let window: Int
    public let inboundSPI: UInt32
    public let outboundSPI: UInt32
    public let remoteTS: [Prefix]
    public let alias: IPAddress?
    public let peer: Endpoint?
    public let seed: UInt8
  }

  /// Tunnel and transport mode, IPv4 and IPv6 inner, every algorithm family, ESN, a small and a
  /// disabled window, two transport tunnels that share one alias (the flow table), a configured peer.
  public static let shapes: [Shape] = [
    Shape(
      name: "gcm-v4", mode: .tunnel, algorithm: .aes128gcm16, esn: false, window: 1024, inboundSPI: 0x1001,
      outboundSPI: 0x2001, remoteTS: [Prefix(address: IPAddress("203.0.113.0")!, length: 28)], alias: nil, peer: nil,
      seed: 1),
    Shape(
      name: "cbc-v6-esn", mode: .tunnel, algorithm: .aes128sha256, esn: true, window: 64, inboundSPI: 0x1002,
      outboundSPI: 0x2002, remoteTS: [Prefix(address: IPAddress("2001:db8:10::")!, length: 64)], alias: nil,
      peer: nil, seed: 2),
    Shape(
      name: "l2tp-a", mode: .transport, algorithm: .chacha20poly1305, esn: false, window: 1024, inboundSPI: 0x1003,
      outboundSPI: 0x2003, remoteTS: [], alias: IPAddress("198.51.100.130")!, peer: nil, seed: 3),
    Shape(
      name: "l2tp-b", mode: .transport, algorithm: .aes256gcm16, esn: false, window: 1024, inboundSPI: 0x1004,
      outboundSPI: 0x2004, remoteTS: [], alias: IPAddress("198.51.100.130")!, peer: nil, seed: 4),
    Shape(
      name: "null-nowindow", mode: .tunnel, algorithm: .nullsha256, esn: false, window: 0, inboundSPI: 0x1005,
      outboundSPI: 0x2005, remoteTS: [Prefix(address: IPAddress("203.0.113.32")!, length: 28)], alias: nil,
      peer: Endpoint(address: IPAddress("203.0.113.7")!, port: 4500), seed: 5),
  ]

  static func key(_ alg: ESPAlgorithm, _ seed: UInt8) -> [UInt8] {
    (0..<alg.keyLength).map { UInt8(truncatingIfNeeded: $0 &* 29 &+ Int(seed)) }
  }
  static func authKey(_ alg: ESPAlgorithm, _ seed: UInt8) -> [UInt8] {
    (0..<alg.authKeyLength).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ Int(seed) &+ 7) }
  }

  /// The gateway's configuration (validated: the shared alias is allowed, the TUN has both families).
  public static func config() -> Config {
    let tunnels = shapes.map { s in
      TunnelConfig(
        name: s.name, mode: s.mode, peer: s.peer, remoteTS: s.remoteTS, alias: s.alias,
        inbound: [
          SAConfig(
            spi: s.inboundSPI, algorithm: s.algorithm, key: key(s.algorithm, s.seed),
            authKey: authKey(s.algorithm, s.seed), esn: s.esn, replayWindow: s.window)
        ],
        outbound: SAConfig(
          spi: s.outboundSPI, algorithm: s.algorithm, key: key(s.algorithm, s.seed &+ 100),
          authKey: authKey(s.algorithm, s.seed &+ 100), esn: s.esn))
    }
    let config = Config(
      listen: [listen],
      tun: TunConfig(
        addresses: [Prefix(address: tunV4, length: 24), Prefix(address: tunV6, length: 64)]),
      tunnels: tunnels)
    guard case .success(let valid) = ConfigParser.validate(config) else {
      fatalError("the fuzz gateway's configuration does not validate")
    }
    return valid
  }

  /// A peer's outbound SA matching tunnel `i`'s inbound SA, whose next packet carries `next`.
  public static func peerSA(_ i: Int, next: UInt64) -> OutboundSA {
    let s = shapes[i]
    let last = s.esn ? next &- 1 : UInt64(UInt32(truncatingIfNeeded: next &- 1))
    // A last number at the top of the space would refuse to seal; one below it still does.
    let max = s.esn ? UInt64.max - 1 : UInt64(UInt32.max) - 1
    return try! OutboundSA(
      spi: s.inboundSPI, algorithm: s.algorithm, key: key(s.algorithm, s.seed), authKey: authKey(s.algorithm, s.seed),
      esn: s.esn, sequenceNumber: min(last, max))
  }
}

/// Everything about a pipeline that only an authenticated packet may change: each tunnel's peer,
/// local endpoint, packet and byte counters, endpoint moves, each inbound SA's replay window and
/// packet count, and the learned flows.
public struct PipelineState: Equatable {
  struct TunnelState: Equatable {
    var peer: Endpoint?
    var local: Endpoint?
    var packetsIn: UInt64
    var bytesIn: UInt64
    var endpointChanges: UInt64
    var windows: [[UInt64]]
    var highest: [UInt64]
    var saPackets: [UInt64]
  }
  var tunnels: [TunnelState]
  var flows: Int

  /// Tunnel `i`'s peer, and the highest sequence number of each of its inbound SAs.
  public func peer(_ i: Int) -> Endpoint? { tunnels[i].peer }
  public func highest(_ i: Int) -> [UInt64] { tunnels[i].highest }

  public init(_ p: Pipeline) {
    tunnels = p.table.tunnels.map { t in
      TunnelState(
        peer: t.peer, local: t.localEndpoint, packetsIn: t.counters.packetsIn, bytesIn: t.counters.bytesIn,
        endpointChanges: t.counters.endpointChanges, windows: t.inbound.map { $0.replay.bitmapWords },
        highest: t.inbound.map { $0.replay.highest }, saPackets: t.inbound.map { $0.packets })
    }
    flows = p.flows.count
  }

  /// Whether only the replay windows and SA counters moved (an authenticated packet dropped after
  /// its ICV passed, e.g. a selector mismatch): peers, endpoints and tunnel counters are unchanged.
  public func sameEndpointsAndCounters(as other: PipelineState) -> Bool {
    zip(tunnels, other.tunnels).allSatisfy {
      $0.peer == $1.peer && $0.local == $1.local && $0.packetsIn == $1.packetsIn && $0.bytesIn == $1.bytesIn
        && $0.endpointChanges == $1.endpointChanges
    } && flows == other.flows
  }
}
