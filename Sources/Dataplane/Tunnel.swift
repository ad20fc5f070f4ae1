// SPDX-License-Identifier: Apache-2.0
// A tunnel at run time: its SAs, its peer endpoint (learned and updated), and its counters.
import ESP

/// Packet and byte counters of one tunnel, and its drops by reason.
public struct TunnelCounters: Sendable, Equatable {
  public var packetsIn: UInt64 = 0
  public var bytesIn: UInt64 = 0
  public var packetsOut: UInt64 = 0
  public var bytesOut: UInt64 = 0
  /// Times the peer endpoint moved (NAT rebinding), authenticated packets only.
  public var endpointChanges: UInt64 = 0
  public var drops = DropCounters()
  public init() {}
}

/// One tunnel: mutable state owned by the loop that runs it (not thread-safe).
public final class Tunnel {
  public let index: Int32
  public let name: String
  public let mode: TunnelMode
  public let remoteTS: [Prefix]
  /// Transport mode: the address that stands for the remote end on the TUN side.
  public let alias: IPAddress?
  /// Whether another tunnel has the same alias (replies are then steered by learned flows).
  public internal(set) var sharesAlias = false
  /// The configured outer source address, if any.
  public let local: IPAddress?
  /// The peer's outer endpoint: configured, or learned from authenticated packets (NAT rebinding).
  public internal(set) var peer: Endpoint?
  /// The local endpoint the peer last reached (IP_PKTINFO): replies leave from it.
  public internal(set) var localEndpoint: Endpoint?
  public internal(set) var outbound: OutboundSA
  public internal(set) var inbound: [InboundSA]
  public internal(set) var counters = TunnelCounters()
  /// Whether the peer was configured (an initiator): such a tunnel sends NAT-keepalives when idle.
  public let peerConfigured: Bool
  /// Monotonic ns of the last datagram sent to the peer (ESP or keepalive), set by the loop.
  var lastSent: UInt64 = 0
  /// NAT-keepalives sent.
  public internal(set) var keepalivesSent: UInt64 = 0
  /// The tunnel of the same name in the snapshot this one replaces, until the loop installs this
  /// snapshot and carries the state over (``takeState(from:)``, on the loop's thread).
  var predecessor: Tunnel? = nil
  /// Chooses the worker that owns this tunnel (``ownerKey(name:mode:alias:)``).
  let ownerKey: UInt64

  init(index: Int32, config: TunnelConfig, outbound: OutboundSA, inbound: [InboundSA]) {
    self.index = index
    name = config.name
    mode = config.mode
    remoteTS = config.remoteTS
    alias = config.alias
    local = config.local
    peer = config.peer
    peerConfigured = config.peer != nil
    self.outbound = outbound
    self.inbound = inbound
    ownerKey = Tunnel.ownerKey(name: config.name, mode: config.mode, alias: config.alias)
  }

  /// Carries a reloaded tunnel's run-time state over from its previous incarnation: the learned
  /// peer (unless the configuration names one), the local endpoint, counters and timers.
  func takeState(from old: Tunnel) {
    // A tunnel whose every SA is new is a peer that restarted: its old NAT mapping may belong to
    // someone else by now, so wait for its first authenticated packet instead.
    let keptAnSA = outbound === old.outbound || inbound.contains { sa in old.inbound.contains { $0 === sa } }
    if !peerConfigured && keptAnSA { peer = old.peer }
    localEndpoint = old.localEndpoint
    counters = old.counters
    lastSent = old.lastSent
    keepalivesSent = old.keepalivesSent
  }

  /// Whether `address` is inside one of the tunnel's `remote_ts` prefixes.
  func acceptsSource(_ address: IPAddress) -> Bool {
    for p in remoteTS where RouteTable.contains(p, address) { return true }
    return false
  }
}
