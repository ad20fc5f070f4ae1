// SPDX-License-Identifier: Apache-2.0
// A worker's counters as it publishes them every round, for `stats`, `list`, SIGUSR1 and metrics to
// read from the control thread without stopping the worker.
import ESP
import Forwarding

/// One worker's published counters: the loop-level counters, the verdict counts, lifetime events
/// and the longest stall. Written by the worker once a round (a few dozen plain stores), read by
/// any thread; each word is atomic, the set is not one instant (as with `/proc/net/snmp`).
public final class WorkerStats: @unchecked Sendable {
  static let verdicts = LoopCounters.fields.count
  static let drops = verdicts + 5
  static let softEvents = drops + DropReason.allCases.count
  static let hardEvents = softEvents + 1
  static let stallMax = hardEvents + 1
  static let gapMax = stallMax + 1
  static let count = gapMax + 1

  let words = SharedWords(count: WorkerStats.count)

  init() {}
  deinit { words.free() }

  /// Copies the worker's counters in (its own thread).
  func publish(core: LoopCore) {
    core.loopCounters.store(into: words, at: 0)
    let p = core.pipeline
    let c = p.counters
    words.store(WorkerStats.verdicts, c.decapsulated)
    words.store(WorkerStats.verdicts + 1, c.encapsulated)
    words.store(WorkerStats.verdicts + 2, c.ike)
    words.store(WorkerStats.verdicts + 3, c.keepalive)
    words.store(WorkerStats.verdicts + 4, c.passed)
    for r in DropReason.allCases { words.store(WorkerStats.drops + Int(r.rawValue), c.drops[r]) }
    words.store(WorkerStats.softEvents, p.softEvents)
    words.store(WorkerStats.hardEvents, p.hardEvents)
    words.store(WorkerStats.stallMax, core.stallMax)
    words.store(WorkerStats.gapMax, core.gapMax)
  }

  /// What the worker last published (any thread).
  public struct Reading: Sendable {
    public var counters = VerdictCounters()
    public var loop = LoopCounters()
    public var softEvents: UInt64 = 0
    public var hardEvents: UInt64 = 0
    /// The longest time (ns) between two batches spent on anything but packets (CPU time), and
    /// the same in wall-clock time (with the time the thread waited for a CPU).
    public var stallMax: UInt64 = 0
    public var gapMax: UInt64 = 0
  }

  /// Reads the published words (any thread).
  public func read() -> Reading {
    var r = Reading()
    r.loop = LoopCounters(words: words, at: 0)
    r.counters.decapsulated = words.load(WorkerStats.verdicts)
    r.counters.encapsulated = words.load(WorkerStats.verdicts + 1)
    r.counters.ike = words.load(WorkerStats.verdicts + 2)
    r.counters.keepalive = words.load(WorkerStats.verdicts + 3)
    r.counters.passed = words.load(WorkerStats.verdicts + 4)
    for d in DropReason.allCases { r.counters.drops[d] = words.load(WorkerStats.drops + Int(d.rawValue)) }
    r.softEvents = words.load(WorkerStats.softEvents)
    r.hardEvents = words.load(WorkerStats.hardEvents)
    r.stallMax = words.load(WorkerStats.stallMax)
    r.gapMax = words.load(WorkerStats.gapMax)
    return r
  }
}
