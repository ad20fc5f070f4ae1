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

  func json(outbound: Bool) -> String {
    "{\"spi\":\"\(LookupTables.hexSPI(spi))\",\"alg\":\"\(algorithm.rawValue)\",\"esn\":\(esn)"
      + ",\"\(outbound ? "seq" : "replay_seq")\":\(sequence),\"packets\":\(packets),\"bytes\":\(bytes),\"state\":\"\(state)\"}"
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

  /// The counters object of `stats` (and `counters` in `list`).
  var countersJSON: String {
    let k = counters
    return "\"packets_in\":\(k.packetsIn),\"bytes_in\":\(k.bytesIn),\"packets_out\":\(k.packetsOut)"
      + ",\"bytes_out\":\(k.bytesOut),\"endpoint_changes\":\(k.endpointChanges),\"keepalives_sent\":\(keepalivesSent)"
      + ",\"drops\":\(StatsSnapshot.dropsJSON(k.drops))"
  }

  var peerJSON: String { peer.map { "\"\($0)\"" } ?? "null" }
}

/// Everything the counters say at one instant: taken on the loop's thread, printed anywhere.
public struct StatsSnapshot: Sendable {
  public var counters: VerdictCounters
  /// Loop-level counters (kernel buffers full, keepalives, IKE punt, batches), in print order.
  public var loop: [(String, UInt64)]
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

  /// The named loop counter (0 if absent).
  public func loopCounter(_ name: String) -> UInt64 { loop.first { $0.0 == name }?.1 ?? 0 }

  static func dropsJSON(_ d: DropCounters) -> String {
    "{" + DropReason.allCases.map { "\"\($0.name)\":\(d[$0])" }.joined(separator: ",") + "}"
  }

  /// The stats object: verdict counts, loop counters, drops by reason, and per tunnel its peer,
  /// packets, bytes, endpoint changes, keepalives and drops.
  public func statsObject(extra: [(String, UInt64)] = []) -> String {
    let c = counters
    var s = "{\"decapsulated\":\(c.decapsulated),\"encapsulated\":\(c.encapsulated)"
    s += ",\"ike\":\(c.ike),\"keepalive\":\(c.keepalive),\"passed\":\(c.passed),\"dropped\":\(c.drops.total)"
    for (k, v) in loop + extra { s += ",\"\(k)\":\(v)" }
    s += ",\"tunnel_count\":\(totals.tunnels),\"inbound_sa_count\":\(totals.inbound)"
    s +=
      ",\"sa_soft_expired\":\(softEvents),\"sa_hard_expired\":\(hardEvents),\"loop_stall_max_ns\":\(stallMax),\"loop_gap_max_ns\":\(gapMax)"
    if !workers.isEmpty {
      s +=
        ",\"workers\":["
        + workers.map {
          "{\"packets\":\($0.packets),\"handed_over\":\($0.handedOver),\"stall_max_ns\":\($0.stallMax),\"gap_max_ns\":\($0.gapMax)}"
        }.joined(separator: ",") + "]"
    }
    s += ",\"drops\":\(StatsSnapshot.dropsJSON(c.drops)),\"tunnels\":["
    s += tunnels.map { t in "{\"name\":\(JSONValue.string(t.name).jsonText),\"peer\":\(t.peerJSON),\(t.countersJSON)}" }
      .joined(separator: ",")
    return s + "]}"
  }

  /// `{"stats":{…}}`: SIGUSR1 and the line printed at exit.
  public var statsJSON: String { "{\"stats\":\(statsObject())}" }

  /// The `list` answer: tunnels with mode, peer, SAs (never keys) and counters.
  public var listJSON: String {
    let items = tunnels.map { t in
      var s = "{\"name\":\(JSONValue.string(t.name).jsonText),\"mode\":\"\(t.mode.rawValue)\",\"peer\":\(t.peerJSON)"
      if let a = t.alias { s += ",\"alias\":\"\(a)\"" }
      if t.mode == .tunnel { s += ",\"remote_ts\":[" + t.remoteTS.map { "\"\($0)\"" }.joined(separator: ",") + "]" }
      s += ",\"inbound\":[" + t.inbound.map { $0.json(outbound: false) }.joined(separator: ",") + "]"
      s += ",\"outbound\":" + t.outbound.json(outbound: true)
      return s + ",\"counters\":{\(t.countersJSON)}}"
    }
    return "{\"ok\":true,\"tunnels\":[" + items.joined(separator: ",") + "]}"
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
  public func snapshot(loop: [(String, UInt64)] = []) -> StatsSnapshot {
    StatsSnapshot(
      counters: counters, loop: loop, tunnels: table.tunnels.map(TunnelSnapshot.init), softEvents: softEvents,
      hardEvents: hardEvents)
  }
}
