// SPDX-License-Identifier: Apache-2.0
// Counters as named fields: the loop-level counters each worker publishes and the control thread's
// own. Readers sum them field by field (`+`); stats JSON and metrics name them from one table.
import ESP
import Forwarding

/// One field of a set of counters: its name (the stats JSON key; the metric is `espd_<name>_total`,
/// or `espd_<name>` for a state), its HELP text, and whether it counts or is a state.
public enum CounterField<Root>: Sendable {
  /// A count that only goes up: summed over workers, a Prometheus counter.
  case count(String, WritableKeyPath<Root, UInt64> & Sendable, help: String)
  /// A state (printed 0 or 1): set when any worker's is, a Prometheus gauge.
  case flag(String, WritableKeyPath<Root, Bool> & Sendable, help: String)

  /// The stats JSON key.
  public var name: String {
    switch self {
    case .count(let n, _, _), .flag(let n, _, _): n
    }
  }

  /// The value in `r`, as printed (a state is 0 or 1).
  public func value(of r: Root) -> UInt64 {
    switch self {
    case .count(_, let p, _): r[keyPath: p]
    case .flag(_, let p, _): r[keyPath: p] ? 1 : 0
    }
  }

  /// Sets the field of `r` from its printed value.
  func set(_ v: UInt64, in r: inout Root) {
    switch self {
    case .count(_, let p, _): r[keyPath: p] = v
    case .flag(_, let p, _): r[keyPath: p] = v != 0
    }
  }

  /// Adds `o`'s value of the field to `r`'s: counts add (wrapping), states combine (any set).
  func add(_ o: Root, to r: inout Root) {
    switch self {
    case .count(_, let p, _): r[keyPath: p] &+= o[keyPath: p]
    case .flag(_, let p, _): r[keyPath: p] = r[keyPath: p] || o[keyPath: p]
    }
  }

  /// The `# HELP`/`# TYPE` lines and the sample, as a counter or a gauge by what the field is.
  func expose(_ r: Root, into out: inout String) {
    switch self {
    case .count(let n, let p, let help): PrometheusCounter("espd_\(n)_total", help).expose(r[keyPath: p], into: &out)
    case .flag(let n, let p, let help): PrometheusGauge("espd_\(n)", help).expose(r[keyPath: p], into: &out)
    }
  }
}

/// A set of named counters: every field listed once in ``fields`` (print order).
public protocol CounterSet: Sendable, Equatable {
  init()
  /// Every field, in the order stats JSON and metrics print them.
  static var fields: [CounterField<Self>] { get }
}

extension CounterSet {
  /// Field by field: counts summed, states combined.
  public static func + (a: Self, b: Self) -> Self {
    var s = a
    s += b
    return s
  }

  public static func += (a: inout Self, b: Self) {
    for f in fields { f.add(b, to: &a) }
  }

  /// The fields as stats JSON members (`"name":value`), in order.
  var jsonMembers: [(key: String, value: JSONValue)] {
    Self.fields.map { ($0.name, .integer($0.value(of: self))) }
  }

  /// Every field's metric family.
  func expose(into out: inout String) {
    for f in Self.fields { f.expose(self, into: &out) }
  }

  /// What a writer stored with its own `store` from `base` (any thread).
  init(words: SharedWords, at base: Int) {
    self.init()
    for (i, f) in Self.fields.enumerated() { f.set(words.load(base + i), in: &self) }
  }
}

/// One worker's loop-level counters: kernel buffers full, keepalives, the IKE punt, batches,
/// offloads and handoffs. Built from the loop's own fields once a round (``LoopCore/loopCounters``).
public struct LoopCounters: CounterSet {
  public var tunWriteDropped: UInt64 = 0
  public var udpSendDropped: UInt64 = 0
  public var keepalivesSent: UInt64 = 0
  public var ikePunted: UInt64 = 0
  public var ikePuntDropped: UInt64 = 0
  public var ikeRateLimited: UInt64 = 0
  public var ikeSourceLimited: UInt64 = 0
  public var ikeReplies: UInt64 = 0
  public var batches: UInt64 = 0
  public var batchedPackets: UInt64 = 0
  public var tunGSOPackets: UInt64 = 0
  public var tunGSOSegments: UInt64 = 0
  public var udpGSOSends: UInt64 = 0
  public var offloadDropped: UInt64 = 0
  public var tunGROPackets: UInt64 = 0
  public var tunGROSegments: UInt64 = 0
  public var udpGROReceives: UInt64 = 0
  public var udpGRODatagrams: UInt64 = 0
  /// A state, not a count: the kernel refused a UDP GSO send.
  public var udpGSORefused = false
  public var handoffPackets: UInt64 = 0
  public var handoffDropped: UInt64 = 0
  public var ikeListenReceived: UInt64 = 0
  public var ikeReplyDropped: UInt64 = 0
  public var ikePuntForeign: UInt64 = 0

  public init() {}

  public static let fields: [CounterField<LoopCounters>] = [
    .count(
      "tun_write_dropped", \.tunWriteDropped, help: "Decapsulated packets the TUN did not take (its queue was full)."),
    .count("udp_send_dropped", \.udpSendDropped, help: "ESP datagrams the kernel did not take (socket buffer full)."),
    .count("keepalives_sent", \.keepalivesSent, help: "NAT-keepalives sent (RFC 3948 section 4)."),
    .count("ike_punted", \.ikePunted, help: "IKE datagrams handed to the IKE daemon."),
    .count(
      "ike_punt_dropped", \.ikePuntDropped,
      help: "IKE datagrams dropped because the queue to the IKE daemon was full (limits.ike_queue_bytes)."),
    .count(
      "ike_rate_limited", \.ikeRateLimited, help: "IKE datagrams dropped over limits.ike_per_second (all sources)."),
    .count(
      "ike_source_limited", \.ikeSourceLimited,
      help: "IKE datagrams dropped over limits.ike_per_source_per_second (their source address's budget)."),
    .count("ike_replies", \.ikeReplies, help: "IKE datagrams sent for the IKE daemon."),
    .count("batches", \.batches, help: "Batches handled by the packet loop."),
    .count(
      "batched_packets", \.batchedPackets,
      help: "Packets in those batches (mean batch size = batched_packets / batches)."),
    .count("tun_gso_packets", \.tunGSOPackets, help: "GSO packets (TCP/UDP up to 64 KB) read from the TUN."),
    .count("tun_gso_segments", \.tunGSOSegments, help: "Segments cut from them, each sealed into its own ESP packet."),
    .count("udp_gso_sends", \.udpGSOSends, help: "sendmsg calls that carried several ESP datagrams (UDP GSO)."),
    .count("offload_dropped", \.offloadDropped, help: "Segments dropped for want of a free buffer."),
    .count(
      "tun_gro_packets", \.tunGROPackets,
      help: "TUN writes that carried several decrypted TCP segments as one GSO packet."),
    .count("tun_gro_segments", \.tunGROSegments, help: "The segments those writes carried."),
    .count(
      "udp_gro_receives", \.udpGROReceives, help: "Receives that carried several coalesced ESP datagrams (UDP GRO)."),
    .count("udp_gro_datagrams", \.udpGRODatagrams, help: "The datagrams those receives carried."),
    .flag(
      "udp_gso_refused", \.udpGSORefused,
      help:
        "1 once the kernel refused a UDP GSO send (its datagrams went again one by one; GSO is then off for that size and larger)."
    ),
    .count(
      "handoff_packets", \.handoffPackets,
      help: "Packets a worker handed to the worker that owns their tunnel (--workers N)."),
    .count("handoff_dropped", \.handoffDropped, help: "Packets lost on the way to their owner: its ring was full."),
    .count(
      "ike_listen_received", \.ikeListenReceived,
      help: "Datagrams received on the ike.listen sockets (port 500: all IKE, no marker)."),
    .count(
      "ike_reply_dropped", \.ikeReplyDropped,
      help:
        "IKE daemon replies not sent: no espd socket for their source address and port, or the kernel refused them."),
    .count(
      "ike_punt_foreign", \.ikePuntForeign,
      help: "Datagrams on the punt channel from anyone but the IKE daemon's address: dropped."),
  ]

  /// Stores every field into `words` from `base`, in ``fields`` order (the worker, once a round:
  /// plain stores, no key paths; ``init(words:at:)`` reads them back).
  @inline(__always)
  func store(into words: SharedWords, at base: Int) {
    words.store(base + 0, tunWriteDropped)
    words.store(base + 1, udpSendDropped)
    words.store(base + 2, keepalivesSent)
    words.store(base + 3, ikePunted)
    words.store(base + 4, ikePuntDropped)
    words.store(base + 5, ikeRateLimited)
    words.store(base + 6, ikeSourceLimited)
    words.store(base + 7, ikeReplies)
    words.store(base + 8, batches)
    words.store(base + 9, batchedPackets)
    words.store(base + 10, tunGSOPackets)
    words.store(base + 11, tunGSOSegments)
    words.store(base + 12, udpGSOSends)
    words.store(base + 13, offloadDropped)
    words.store(base + 14, tunGROPackets)
    words.store(base + 15, tunGROSegments)
    words.store(base + 16, udpGROReceives)
    words.store(base + 17, udpGRODatagrams)
    words.store(base + 18, udpGSORefused ? 1 : 0)
    words.store(base + 19, handoffPackets)
    words.store(base + 20, handoffDropped)
    words.store(base + 21, ikeListenReceived)
    words.store(base + 22, ikeReplyDropped)
    words.store(base + 23, ikePuntForeign)
  }
}

/// The control thread's counters: requests, errors and refusals, scrapes, events sent.
public struct ControlCounters: CounterSet {
  public var requests: UInt64 = 0
  public var errors: UInt64 = 0
  public var refusedNotOwner: UInt64 = 0
  public var refusedBusy: UInt64 = 0
  public var refusedLimit: UInt64 = 0
  public var metricsScrapes: UInt64 = 0
  public var eventsSent: UInt64 = 0

  public init() {}

  public static let fields: [CounterField<ControlCounters>] = [
    control("control_requests", \.requests), control("control_errors", \.errors),
    control("control_refused_not_owner", \.refusedNotOwner), control("control_refused_busy", \.refusedBusy),
    control("control_refused_limit", \.refusedLimit), control("metrics_scrapes", \.metricsScrapes),
    control("events_sent", \.eventsSent),
  ]

  /// A count whose HELP is its name in words.
  private static func control(
    _ name: String, _ path: WritableKeyPath<ControlCounters, UInt64> & Sendable
  ) -> CounterField<ControlCounters> {
    .count(name, path, help: "Control socket: \(String(name.map { $0 == "_" ? " " : $0 })).")
  }
}
