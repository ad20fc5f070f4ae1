// SPDX-License-Identifier: Apache-2.0
// Which worker owns a tunnel (`--workers N`): every SA has a single writer for its sequence number
// and replay window because every packet of a tunnel, in and out, is handled by its owner. A
// worker that receives a packet it does not own hands it over (DESIGN.md "Speed").
import ESP
import UDPEncap

extension Tunnel {
  /// The key a tunnel's owner is chosen by: its alias in transport mode (tunnels that share an
  /// alias then share an owner, which keeps their learned flows in one table), its name otherwise.
  /// Stable for the life of the process (FNV-1a, not Swift's seeded hash), so that a reloaded
  /// tunnel keeps its owner.
  package static func ownerKey(name: String, mode: TunnelMode, alias: IPAddress?) -> UInt64 {
    if mode == .transport, let alias { return aliasOwnerKey(alias) }
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x0100_0000_01b3 }
    return mix64(h)
  }

  /// The worker, of `workers`, that owns keys with this hash.
  @inline(__always)
  package static func owner(_ key: UInt64, workers: Int) -> Int { workers <= 1 ? 0 : Int(key % UInt64(workers)) }

  /// The owner key of an alias (see ``ownerKey(name:mode:alias:)``).
  static func aliasOwnerKey(_ alias: IPAddress) -> UInt64 {
    RouteTable.mask(alias, alias.isV6 ? 128 : 32).tableHash
  }
}

extension Pipeline {
  /// The worker that owns keys with this hash.
  @inline(__always)
  func owner(_ key: UInt64) -> Int { Tunnel.owner(key, workers: workers) }

  /// Whether this pipeline's worker owns the tunnel (always, with one worker).
  @inline(__always)
  public func owns(_ t: Tunnel) -> Bool { owner(t.ownerKey) == worker }

  /// The worker that must handle a datagram received on a NAT-T port: the owner of the SPI's
  /// tunnel for ESP, worker 0 (which holds the IKE punt channel) for IKE, this worker for anything
  /// it can count and drop on its own (keepalives, malformed datagrams, unknown SPIs).
  public func inboundOwner(_ payload: UnsafeRawBufferPointer) -> Int {
    guard workers > 1 else { return 0 }
    switch UDPEncap.classify(payload) {
    case .esp(let spi):
      guard let tunnel = table.inboundTunnel(spi: spi) else { return worker }
      return owner(tunnel.ownerKey)
    case .ike: return 0
    case .natKeepalive, .malformed: return worker
    }
  }

  /// The worker that must handle a packet read from the TUN: the owner of the tunnel it is routed
  /// into (of the alias, when several tunnels share it), this worker when it is not routed.
  /// Reads only the immutable tables, never another worker's learned flows.
  public func outboundOwner(_ packet: PacketBuffer) -> Int {
    guard workers > 1, let header = IPHeader.parse(packet.bytes) else { return worker }
    switch routeTarget(header.destination) {
    case .tunnel(let t):
      guard let tunnel = table.slots[Int(t)] else { return worker }
      return owner(tunnel.ownerKey)
    case .sharedAlias: return owner(Tunnel.aliasOwnerKey(header.destination))
    case .none: return worker
    }
  }
}
