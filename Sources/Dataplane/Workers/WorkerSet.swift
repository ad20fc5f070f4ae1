// SPDX-License-Identifier: Apache-2.0
// The workers as the control thread sees them while they are parked: one snapshot swap for all,
// and their counters summed.
import ESP

/// The loops of one dataplane (`--workers N`), for ``Mailbox/paused(_:)``: touched only while every
/// worker is parked (or before they start, or after they stop).
final class WorkerSet: ParkedDataplane {
  private(set) var cores: [LoopCore]
  /// Steers inbound datagrams to their owner's socket by SPI (nil: one worker, or no eBPF here).
  var steering: SPISteering?

  init(_ cores: [LoopCore]) { self.cores = cores }

  /// Keeps only the first worker (after a fallback to a loop that runs alone).
  func keepFirst() {
    cores = [cores[0]]
    cores[0].pipeline.workers = 1
    cores[0].mesh = nil
    if let steering { for s in cores[0].sockets { steering.detach(from: s) } }
    steering = nil
  }

  func install(_ table: SATable) -> SATable? {
    steering?.sync(to: table, workers: cores.count)
    return WorkerSet.install(table, on: cores.map(\.pipeline))
  }

  func snapshot() -> StatsSnapshot { WorkerSet.merge(cores.map { ($0.pipeline, $0.loopCounters) }) }

  /// Swaps `table` in on every pipeline: the first install carries each tunnel's state over from
  /// its predecessor; every worker's learned flows follow their tunnels to the new indices.
  /// - Returns: the snapshot replaced.
  static func install(_ table: SATable, on pipelines: [Pipeline]) -> SATable? {
    let old = pipelines.first?.table
    for p in pipelines { p.install(table, replacing: old) }
    return old
  }

  /// Counters summed over the workers; tunnels (whose counters only their owner writes) read once.
  static func merge(_ parts: [(pipeline: Pipeline, loop: [(String, UInt64)])]) -> StatsSnapshot {
    var s = parts[0].pipeline.snapshot(loop: parts[0].loop)
    for (p, loop) in parts.dropFirst() {
      s.counters.add(p.counters)
      for (i, (k, v)) in loop.enumerated() where i < s.loop.count {
        s.loop[i].1 = k == "udp_gso_refused" ? max(s.loop[i].1, v) : s.loop[i].1 &+ v  // a flag, not a count
      }
      s.softEvents &+= p.softEvents
      s.hardEvents &+= p.hardEvents
    }
    s.workers = parts.map { part in
      WorkerLoad(
        packets: part.loop.first { $0.0 == "batched_packets" }?.1 ?? 0,
        handedOver: part.loop.first { $0.0 == "handoff_packets" }?.1 ?? 0)
    }
    return s
  }
}
