// SPDX-License-Identifier: Apache-2.0
// What the packet paths decided for each packet, and the global counters of those decisions.

/// The outcome of one packet through the inbound or outbound path.
public enum Verdict: Equatable, Sendable {
  /// ESP opened: the buffer holds the IP packet for the TUN.
  case decapsulated(tunnel: Int32)
  /// Sealed: the buffer holds the ESP packet (UDP payload) for the tunnel's peer.
  case encapsulated(tunnel: Int32)
  /// An IKE message (marker stripped) for the IKE daemon.
  case ike
  /// A NAT-keepalive: counted, dropped.
  case keepalive
  /// Neither ESP nor routed into a tunnel (replay only).
  case passed
  /// Dropped for this reason.
  case dropped(DropReason)
}

/// Counts of every verdict, global to a loop. Not thread-safe; owned by one loop.
public struct VerdictCounters: Sendable, Equatable {
  public var decapsulated: UInt64 = 0
  public var encapsulated: UInt64 = 0
  public var ike: UInt64 = 0
  public var keepalive: UInt64 = 0
  public var passed: UInt64 = 0
  public var drops = DropCounters()
  public init() {}

  /// Counts one verdict.
  public mutating func count(_ v: Verdict) {
    switch v {
    case .decapsulated: decapsulated &+= 1
    case .encapsulated: encapsulated &+= 1
    case .ike: ike &+= 1
    case .keepalive: keepalive &+= 1
    case .passed: passed &+= 1
    case .dropped(let r): drops.count(r)
    }
  }

  /// Adds another worker's counts to these.
  public mutating func add(_ other: VerdictCounters) {
    decapsulated &+= other.decapsulated
    encapsulated &+= other.encapsulated
    ike &+= other.ike
    keepalive &+= other.keepalive
    passed &+= other.passed
    drops.add(other.drops)
  }

  /// Every verdict counted.
  public var total: UInt64 { decapsulated + encapsulated + ike + keepalive + passed + drops.total }
}
