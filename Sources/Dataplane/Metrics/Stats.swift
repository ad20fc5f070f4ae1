// SPDX-License-Identifier: Apache-2.0
// The counters of a running dataplane, copied out of the loop as one value (between batches), and
// printed as the stats JSON (`espd stats`, SIGUSR1, exit) and the `list` answer. Keys never appear.
import ESP
import Forwarding

/// One SA as `list` shows it: identity, use, and lifetime state. No key material.
public struct SASummary: Sendable, Equatable {
  public var spi: UInt32
  public var algorithm: ESPAlgorithm
  public var esn: Bool
  public var packets: UInt64
  public var bytes: UInt64
  /// Outbound: the last sequence number used; inbound: the highest one accepted.
  public var sequence: UInt64
  /// `active`, `soft_expired` or `expired`.
  public var state: String

  /// From what the SA published (any thread).
  init(_ sa: InboundSA) {
    self.init(
      spi: sa.spi, algorithm: sa.algorithm, esn: sa.esn, packets: sa.packets, bytes: sa.bytes,
      sequence: sa.publishedSequence, state: sa.publishedState)
  }
  init(_ sa: OutboundSA) {
    self.init(
      spi: sa.spi, algorithm: sa.algorithm, esn: sa.esn, packets: sa.packets, bytes: sa.bytes,
      sequence: sa.publishedSequence, state: sa.publishedState)
  }

  private init(
    spi: UInt32, algorithm: ESPAlgorithm, esn: Bool, packets: UInt64, bytes: UInt64, sequence: UInt64, state s: UInt64
  ) {
    self.spi = spi
    self.algorithm = algorithm
    self.esn = esn
    self.packets = packets
    self.bytes = bytes
    self.sequence = sequence
    state = s & 2 != 0 ? "expired" : s & 1 != 0 ? "soft_expired" : "active"
  }

  /// The SA as `list` shows it (the sequence number is `seq` outbound, `replay_seq` inbound).
  func jsonValue(outbound: Bool) -> JSONValue {
    .object([
      ("spi", .string(LookupTables.hexSPI(spi))), ("alg", .string(algorithm.rawValue)), ("esn", .bool(esn)),
      (outbound ? "seq" : "replay_seq", .integer(sequence)), ("packets", .integer(packets)), ("bytes", .integer(bytes)),
      ("state", .string(state)),
    ])
  }
}

/// One tunnel's state and counters.
public struct TunnelSnapshot: Sendable, Equatable {
  public var name: String
  public var mode: TunnelMode
  public var peer: Endpoint?
  public var alias: IPAddress?
  public var remoteTS: [Prefix]
  public var counters: TunnelCounters
  public var keepalivesSent: UInt64
  public var inbound: [SASummary]
  public var outbound: SASummary

  /// A tunnel as the control thread knows it (its SAs), with what its owner published.
  init(_ t: Tunnel, inbound: [InboundSA], outbound: OutboundSA) {
    name = t.name
    mode = t.mode
    peer = t.publishedPeer
    alias = t.alias
    remoteTS = t.remoteTS
    counters = t.counters
    keepalivesSent = t.keepalivesSent
    self.inbound = inbound.map(SASummary.init)
    self.outbound = SASummary(outbound)
  }

  /// A tunnel read on its owner's thread (replay and tests).
  init(_ t: Tunnel) { self.init(t, inbound: t.inbound, outbound: t.outbound) }

  /// The members of the counters object of `stats` (and `counters` in `list`).
  var counterMembers: [(key: String, value: JSONValue)] {
    let k = counters
    return [
      ("packets_in", .integer(k.packetsIn)), ("bytes_in", .integer(k.bytesIn)), ("packets_out", .integer(k.packetsOut)),
      ("bytes_out", .integer(k.bytesOut)), ("endpoint_changes", .integer(k.endpointChanges)),
      ("keepalives_sent", .integer(keepalivesSent)), ("drops", StatsSnapshot.dropsValue(k.drops)),
    ]
  }

  var peerValue: JSONValue { peer.map { .string("\($0)") } ?? .null }
}

/// Everything the counters say at one instant: taken on the loop's thread, printed anywhere.
public struct StatsSnapshot: Sendable {
  public var counters: VerdictCounters
  /// Loop-level counters (kernel buffers full, keepalives, IKE punt, batches), summed over workers.
  public var loop: LoopCounters
  public var tunnels: [TunnelSnapshot]
  public var softEvents: UInt64
  public var hardEvents: UInt64
  /// Per worker (`--workers N`): packets it processed, and packets it handed to another worker.
  public var workers: [WorkerLoad] = []
  /// The longest time (ns) any worker spent between two batches on anything but packets, in its
  /// own CPU time; and the longest such stretch in wall-clock time (with time spent preempted).
  public var stallMax: UInt64 = 0
  public var gapMax: UInt64 = 0
  /// Whether the metrics list every tunnel (`metrics_per_tunnel`).
  public var perTunnelMetrics = true
  /// Tunnels and inbound SAs in force, when ``tunnels`` was not read (a summary).
  public var tunnelCount: Int? = nil
  public var inboundSACount: Int? = nil

  /// Tunnels and inbound SAs in force.
  public var totals: (tunnels: Int, inbound: Int) {
    (tunnelCount ?? tunnels.count, inboundSACount ?? tunnels.reduce(0) { $0 + $1.inbound.count })
  }

  /// Drop counters by reason, as an object.
  static func dropsValue(_ d: DropCounters) -> JSONValue {
    .object(DropReason.allCases.map { ($0.name, .integer(d[$0])) })
  }

  /// The stats object: verdict counts, loop counters (and the control thread's), drops by reason,
  /// and per tunnel its peer, packets, bytes, endpoint changes, keepalives and drops.
  public func statsObject(control: ControlCounters? = nil) -> JSONValue {
    let c = counters
    var m: [(key: String, value: JSONValue)] = [
      ("decapsulated", .integer(c.decapsulated)), ("encapsulated", .integer(c.encapsulated)), ("ike", .integer(c.ike)),
      ("keepalive", .integer(c.keepalive)), ("passed", .integer(c.passed)), ("dropped", .integer(c.drops.total)),
    ]
    m += loop.jsonMembers
    if let control { m += control.jsonMembers }
    m += [
      ("tunnel_count", .integer(totals.tunnels)), ("inbound_sa_count", .integer(totals.inbound)),
      ("sa_soft_expired", .integer(softEvents)), ("sa_hard_expired", .integer(hardEvents)),
      ("loop_stall_max_ns", .integer(stallMax)), ("loop_gap_max_ns", .integer(gapMax)),
    ]
    if !workers.isEmpty {
      m.append(
        (
          "workers",
          .array(
            workers.map {
              .object([
                ("packets", .integer($0.packets)), ("handed_over", .integer($0.handedOver)),
                ("stall_max_ns", .integer($0.stallMax)), ("gap_max_ns", .integer($0.gapMax)),
              ])
            })
        ))
    }
    m.append(("drops", StatsSnapshot.dropsValue(c.drops)))
    m.append(
      (
        "tunnels",
        .array(tunnels.map { t in .object([("name", .string(t.name)), ("peer", t.peerValue)] + t.counterMembers) })
      ))
    return .object(m)
  }

  /// `{"stats":{…}}`: SIGUSR1 and the line printed at exit.
  public var statsJSON: String { JSONValue.object([("stats", statsObject())]).jsonText }

  /// The `list` answer: tunnels with mode, peer, SAs (never keys) and counters.
  public var listJSON: String {
    let items = tunnels.map { t -> JSONValue in
      var m: [(key: String, value: JSONValue)] = [
        ("name", .string(t.name)), ("mode", .string(t.mode.rawValue)), ("peer", t.peerValue),
      ]
      if let a = t.alias { m.append(("alias", .string("\(a)"))) }
      if t.mode == .tunnel { m.append(("remote_ts", .array(t.remoteTS.map { .string("\($0)") }))) }
      m.append(("inbound", .array(t.inbound.map { $0.jsonValue(outbound: false) })))
      m.append(("outbound", t.outbound.jsonValue(outbound: true)))
      m.append(("counters", .object(t.counterMembers)))
      return .object(m)
    }
    return JSONValue.object([("ok", .bool(true)), ("tunnels", .array(items))]).jsonText
  }
}

/// One worker's share of the load.
public struct WorkerLoad: Sendable, Equatable {
  /// Packets its pipeline processed (its own and those handed to it).
  public var packets: UInt64
  /// Packets it handed to the worker that owns their tunnel.
  public var handedOver: UInt64
  /// The longest time (ns) it spent between two batches on anything but packets (CPU time), and
  /// in wall-clock time.
  public var stallMax: UInt64 = 0
  public var gapMax: UInt64 = 0
}

extension Pipeline {
  /// Copies every counter out (on the loop's thread, between batches).
  public func snapshot(loop: LoopCounters = LoopCounters()) -> StatsSnapshot {
    StatsSnapshot(
      counters: counters, loop: loop, tunnels: table.tunnels.map(TunnelSnapshot.init), softEvents: softEvents,
      hardEvents: hardEvents)
  }
}
