// SPDX-License-Identifier: Apache-2.0
// The workers as the control thread sees them: a change queue each, the counters each publishes,
// and the SPI steering map. Nothing here stops a worker.
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// The loops of one dataplane (`--workers N`), from the control thread's side.
final class WorkerSet {
  private(set) var cores: [LoopCore]
  /// One per worker, in worker order.
  private(set) var queues: [ChangeQueue]
  /// Steers inbound datagrams to their owner's socket by SPI (nil: one worker, or no eBPF here).
  var steering: SPISteering?

  /// - Parameter wakeFDs: each worker's mailbox eventfd (a queued change wakes an idle worker).
  init(_ cores: [LoopCore], wakeFDs: [Int32]) {
    self.cores = cores
    queues = cores.indices.map { ChangeQueue(wakeFD: $0 < wakeFDs.count ? wakeFDs[$0] : -1) }
    for (c, q) in zip(cores, queues) { c.changes = q }
  }

  /// Keeps only the first worker (after a fallback to a loop that runs alone).
  func keepFirst() {
    cores = [cores[0]]
    queues = [queues[0]]
    cores[0].pipeline.workers = 1
    cores[0].mesh = nil
    if let steering { for s in cores[0].sockets { steering.detach(from: s) } }
    steering = nil
  }

  /// Queues `all` for every worker, and `perWorker[w]` for worker `w` after it.
  func push(_ all: [TableChange], _ perWorker: [[TableChange]]) {
    for (w, q) in queues.enumerated() {
      q.push(w < perWorker.count ? all + perWorker[w] : all)
    }
  }

  /// Returns once every worker applied everything queued for it, or after 5 seconds.
  /// - Returns: false on the timeout (a worker that stopped, or is stuck).
  @discardableResult
  func settle() -> Bool {
    let targets = queues.map(\.pushed)
    for q in queues { q.wake() }
    let deadline = LoopCore.now() + 5_000_000_000
    while zip(queues, targets).contains(where: { $0.applied < $1 }) {
      if LoopCore.now() > deadline { return false }
      usleep(50)
    }
    return true
  }

  /// Frees what the workers let go of (old tables, on the control thread).
  func collectGarbage() {
    for q in queues { _ = q.takeGarbage() }
  }

  /// Every worker's published counters, summed; the tunnels as `model` knows them.
  /// - Parameter tunnels: whether to read every tunnel (O(tunnels)) or the global counters only.
  func snapshot(model: ControlModel, tunnels: Bool) -> StatsSnapshot {
    let readings = cores.map { $0.stats.read() }
    var s = WorkerSet.merge(readings)
    if tunnels {
      s.tunnels = model.records.map { TunnelSnapshot($0.tunnel, inbound: $0.inbound, outbound: $0.outbound) }
    }
    return s
  }

  /// Counters summed over the workers (no tunnels).
  static func merge(_ readings: [WorkerStats.Reading]) -> StatsSnapshot {
    var s = StatsSnapshot(
      counters: readings[0].counters, loop: readings[0].loop, tunnels: [], softEvents: readings[0].softEvents,
      hardEvents: readings[0].hardEvents)
    for r in readings.dropFirst() {
      s.counters.add(r.counters)
      s.loop += r.loop
      s.softEvents &+= r.softEvents
      s.hardEvents &+= r.hardEvents
    }
    s.stallMax = readings.map(\.stallMax).max() ?? 0
    s.gapMax = readings.map(\.gapMax).max() ?? 0
    s.workers = readings.map { r in
      WorkerLoad(
        packets: r.loop.batchedPackets, handedOver: r.loop.handoffPackets, stallMax: r.stallMax, gapMax: r.gapMax)
    }
    return s
  }
}
