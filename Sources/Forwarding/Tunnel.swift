// SPDX-License-Identifier: Apache-2.0
// A tunnel at run time: its SAs, its peer endpoint (learned and updated), and its counters.
import CAtomics
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

/// Indices of a tunnel's ``SharedWords``: counters, then the published peer (a sequence lock).
package enum TunnelWord {
  static let packetsIn = 0
  static let bytesIn = 1
  static let packetsOut = 2
  static let bytesOut = 3
  static let endpointChanges = 4
  package static let keepalivesSent = 5
  static let drops = 6
  /// Even: the peer words are stable; odd: the owner is writing them.
  static let peerSequence = drops + DropReason.allCases.count
  static let peerHigh = peerSequence + 1
  static let peerLow = peerSequence + 2
  /// Bit 32: a peer is set; bit 33: IPv6; low 16 bits: the port.
  static let peerMeta = peerSequence + 3
  static let count = peerSequence + 4
}

/// One tunnel: mutable state owned by the loop that runs it (not thread-safe), and counters and
/// the peer published for readers on other threads (`stats`, `list`, metrics) through
/// ``SharedWords``.
public final class Tunnel {
  /// Its slot in every worker's table (assigned by the control thread, stable for its life).
  public let index: Int32
  public let name: String
  public let mode: TunnelMode
  public let remoteTS: [Prefix]
  /// Transport mode: the address that stands for the remote end on the TUN side.
  public let alias: IPAddress?
  /// Whether another tunnel has the same alias (replies are then steered by learned flows).
  @exclusivity(unchecked) public internal(set) var sharesAlias = false
  /// The configured outer source address, if any (`update_tunnel` may change it: owner only).
  @exclusivity(unchecked) public internal(set) var local: IPAddress?
  /// The peer's outer endpoint: configured, or learned from authenticated packets (NAT rebinding).
  @exclusivity(unchecked) public internal(set) var peer: Endpoint? { didSet { publishPeer() } }
  /// The local endpoint the peer last reached (IP_PKTINFO): replies leave from it.
  @exclusivity(unchecked) public internal(set) var localEndpoint: Endpoint?
  @exclusivity(unchecked) public internal(set) var outbound: OutboundSA
  @exclusivity(unchecked) public internal(set) var inbound: [InboundSA]
  /// Counters and the published peer (``TunnelWord``); written by the owner only.
  let published = SharedWords(count: TunnelWord.count)
  /// Whether the peer was configured (an initiator): such a tunnel sends NAT-keepalives when idle.
  public let peerConfigured: Bool
  /// `nat_keepalive`: false keeps an initiator out of the keepalive sweep (the IKE daemon sends them).
  public let natKeepalive: Bool
  /// Monotonic ns of the last datagram sent to the peer (ESP or keepalive), set by the loop.
  @exclusivity(unchecked) package var lastSent: UInt64 = 0
  /// NAT-keepalives sent.
  public var keepalivesSent: UInt64 { published.load(TunnelWord.keepalivesSent) }
  /// Its place in its owner's sweep lists (``LookupTables/timed``, ``LookupTables/initiators``), or -1.
  @exclusivity(unchecked) var timedPosition: Int32 = -1
  @exclusivity(unchecked) var initiatorPosition: Int32 = -1
  /// Chooses the worker that owns this tunnel (``ownerKey(name:mode:alias:)``).
  package let ownerKey: UInt64

  package init(index: Int32, config: TunnelConfig, outbound: OutboundSA, inbound: [InboundSA]) {
    self.index = index
    name = config.name
    mode = config.mode
    remoteTS = config.remoteTS
    alias = config.alias
    local = config.local
    peer = config.peer
    peerConfigured = config.peer != nil
    natKeepalive = config.natKeepalive
    self.outbound = outbound
    self.inbound = inbound
    ownerKey = Tunnel.ownerKey(name: config.name, mode: config.mode, alias: config.alias)
    publishPeer()
  }

  deinit { published.free() }

  /// The counters (any thread: each word is read atomically; the set is not one instant).
  public var counters: TunnelCounters {
    var c = TunnelCounters()
    c.packetsIn = published.load(TunnelWord.packetsIn)
    c.bytesIn = published.load(TunnelWord.bytesIn)
    c.packetsOut = published.load(TunnelWord.packetsOut)
    c.bytesOut = published.load(TunnelWord.bytesOut)
    c.endpointChanges = published.load(TunnelWord.endpointChanges)
    for r in DropReason.allCases { c.drops[r] = published.load(TunnelWord.drops + Int(r.rawValue)) }
    return c
  }

  /// Counts a drop on this tunnel (owner only).
  @inline(__always)
  func countDrop(_ r: DropReason) { published.add(TunnelWord.drops + Int(r.rawValue), 1) }

  /// Counts into word `w` (owner only).
  @inline(__always)
  package func count(_ w: Int, _ n: UInt64 = 1) { published.add(w, n) }

  /// Writes the peer into the published words (owner only, when it changes).
  private func publishPeer() {
    let s = published.load(TunnelWord.peerSequence)
    published.store(TunnelWord.peerSequence, s &+ 1)
    espd_fence_release()
    var high: UInt64 = 0
    var low: UInt64 = 0
    var meta: UInt64 = 0
    if let p = peer {
      switch p.address {
      case .v4(let a): low = UInt64(a)
      case .v6(let h, let l):
        (high, low) = (h, l)
        meta |= 1 << 33
      }
      meta |= 1 << 32 | UInt64(p.port)
    }
    published.store(TunnelWord.peerHigh, high)
    published.store(TunnelWord.peerLow, low)
    published.store(TunnelWord.peerMeta, meta)
    published.storeRelease(TunnelWord.peerSequence, s &+ 2)
  }

  /// The peer as last published (any thread).
  public var publishedPeer: Endpoint? {
    while true {
      let s = published.loadAcquire(TunnelWord.peerSequence)
      if s & 1 != 0 { continue }
      let (high, low, meta) = (
        published.load(TunnelWord.peerHigh), published.load(TunnelWord.peerLow), published.load(TunnelWord.peerMeta)
      )
      espd_fence_acquire()
      guard published.load(TunnelWord.peerSequence) == s else { continue }
      guard meta & 1 << 32 != 0 else { return nil }
      let address: IPAddress = meta & 1 << 33 != 0 ? .v6(high, low) : .v4(UInt32(truncatingIfNeeded: low))
      return Endpoint(address: address, port: UInt16(truncatingIfNeeded: meta))
    }
  }

  /// Carries a reloaded tunnel's run-time state over from its previous incarnation: the learned
  /// peer (unless the configuration names one), the local endpoint, counters and timers.
  package func takeState(from old: Tunnel) {
    // A tunnel whose every SA is new is a peer that restarted: its old NAT mapping may belong to
    // someone else by now, so wait for its first authenticated packet instead.
    let keptAnSA = outbound === old.outbound || inbound.contains { sa in old.inbound.contains { $0 === sa } }
    if !peerConfigured && keptAnSA { peer = old.peer }
    localEndpoint = old.localEndpoint
    for w in 0..<TunnelWord.peerSequence { published.store(w, old.published.load(w)) }
    lastSent = old.lastSent
  }

  /// Whether one of its SAs has a time limit (the owner then checks it once a second).
  var hasTimedSA: Bool { outbound.limits.isTimed || inbound.contains { $0.limits.isTimed } }

  /// Whether `address` is inside one of the tunnel's `remote_ts` prefixes.
  func acceptsSource(_ address: IPAddress) -> Bool {
    for p in remoteTS where RouteTable.contains(p, address) { return true }
    return false
  }
}
