// SPDX-License-Identifier: Apache-2.0
// Where the control thread and the packet loop meet: new snapshots and stats requests one way,
// installed generations, stats, lifetime events and retired snapshots the other.
import CIO

#if canImport(Glibc)
  import Glibc
#endif

/// A mutex-protected handoff with an eventfd in each direction. The loop takes the lock only when
/// its eventfd fired or it has events to hand over, never per packet; snapshots are immutable
/// tables swapped in between batches (DESIGN.md: no lock per packet).
public final class Mailbox: @unchecked Sendable {
  private let lock: UnsafeMutablePointer<pthread_mutex_t>
  private let cond: UnsafeMutablePointer<pthread_cond_t>
  /// Readable when the control thread left work for the loop.
  public let loopFD: Int32
  /// Readable when the loop left something for the control thread.
  public let controlFD: Int32

  // Guarded by `lock`.
  private var pendingTable: SATable? = nil
  private var postedGeneration: UInt64 = 0
  private var installedGeneration: UInt64 = 0
  private var statsWanted: UInt64 = 0
  private var statsDone: UInt64 = 0
  private var statsResult: StatsSnapshot? = nil
  private var events: [SAEvent] = []
  private var retired: [SATable] = []
  private var reload = false
  private var loopGone = false
  /// Events dropped because the control thread did not take them (bounded queue).
  private var eventsDropped: UInt64 = 0
  static let maxQueuedEvents = 65536

  public init() throws(SystemError) {
    loopFD = try Sys.call("cannot create an eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
    controlFD = try Sys.call("cannot create an eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
    lock = .allocate(capacity: 1)
    cond = .allocate(capacity: 1)
    pthread_mutex_init(lock, nil)
    var attr = pthread_condattr_t()
    pthread_condattr_init(&attr)
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
    pthread_cond_init(cond, &attr)
    pthread_condattr_destroy(&attr)
  }

  deinit {
    pthread_cond_destroy(cond)
    pthread_mutex_destroy(lock)
    cond.deallocate()
    lock.deallocate()
    close(loopFD)
    close(controlFD)
  }

  private func locked<T>(_ body: () -> T) -> T {
    pthread_mutex_lock(lock)
    defer { pthread_mutex_unlock(lock) }
    return body()
  }

  private static func signal(_ fd: Int32) {
    var one: UInt64 = 1
    _ = write(fd, &one, 8)
  }

  /// Empties an eventfd (after it polled readable).
  public static func drain(_ fd: Int32) {
    var value: UInt64 = 0
    _ = read(fd, &value, 8)
  }

  /// Waits on the condition until `done()` or the deadline; false on timeout. Call with the lock held.
  private func wait(until done: () -> Bool, seconds: Int) -> Bool {
    var deadline = timespec()
    clock_gettime(CLOCK_MONOTONIC, &deadline)
    deadline.tv_sec += seconds
    while !done() {
      if pthread_cond_timedwait(cond, lock, &deadline) == ETIMEDOUT { return done() }
    }
    return true
  }

  // MARK: control thread

  /// Why the loop did not answer.
  public enum Failure: Error, CustomStringConvertible {
    case loopStopped, timedOut
    public var description: String {
      switch self {
      case .loopStopped: "the dataplane is shutting down"
      case .timedOut: "the dataplane did not answer within 5 seconds"
      }
    }
  }

  /// Hands a new snapshot to the loop and waits until it is in use (so that a controller told
  /// "ok" may rely on it, e.g. switch the peer's outbound SA only once this end accepts the new SPI).
  public func publish(_ table: SATable) throws(Failure) {
    pthread_mutex_lock(lock)
    defer { pthread_mutex_unlock(lock) }
    guard !loopGone else { throw .loopStopped }
    postedGeneration += 1
    let generation = postedGeneration
    pendingTable = table
    Mailbox.signal(loopFD)
    let ok = wait(until: { installedGeneration >= generation || loopGone }, seconds: 5)
    guard installedGeneration >= generation else { throw ok ? .loopStopped : .timedOut }
  }

  /// Asks the loop for its counters and waits for them.
  public func stats() throws(Failure) -> StatsSnapshot {
    pthread_mutex_lock(lock)
    defer { pthread_mutex_unlock(lock) }
    guard !loopGone else { throw .loopStopped }
    statsWanted += 1
    let wanted = statsWanted
    Mailbox.signal(loopFD)
    _ = wait(until: { statsDone >= wanted || loopGone }, seconds: 5)
    guard statsDone >= wanted, let s = statsResult else { throw loopGone ? .loopStopped : .timedOut }
    return s
  }

  /// What the loop left: lifetime events, snapshots it no longer uses (released here, off the
  /// loop's thread, with their key material), and whether SIGHUP asked for a reload.
  public func take() -> (events: [SAEvent], reload: Bool, eventsDropped: UInt64) {
    Mailbox.drain(controlFD)
    var retiredHere: [SATable] = []
    let r = locked { () -> ([SAEvent], Bool, UInt64) in
      let e = events
      events = []
      retiredHere = retired
      retired = []
      let r = reload
      reload = false
      return (e, r, eventsDropped)
    }
    retiredHere.removeAll()  // deinit (and key wiping) happens here, outside the lock
    return r
  }

  // MARK: loop thread

  /// The work the control thread left: a snapshot to install (with its generation) and whether
  /// counters are wanted. The loop does it, then calls ``finish(generation:retired:stats:)``.
  func takeWork() -> (table: SATable?, generation: UInt64, statsWanted: UInt64) {
    Mailbox.drain(loopFD)
    return locked {
      let t = pendingTable
      pendingTable = nil
      return (t, postedGeneration, statsWanted > statsDone ? statsWanted : 0)
    }
  }

  /// Reports the work done and wakes whoever waits.
  func finish(generation: UInt64, retired old: SATable?, stats: StatsSnapshot?, statsGeneration: UInt64) {
    locked {
      installedGeneration = max(installedGeneration, generation)
      if let old { retired.append(old) }
      if let stats {
        statsResult = stats
        statsDone = statsGeneration
      }
      pthread_cond_broadcast(cond)
    }
    if old != nil { Mailbox.signal(controlFD) }
  }

  /// Hands lifetime events to the control thread (bounded: beyond the bound they are counted).
  func post(events new: [SAEvent]) {
    locked {
      let room = max(0, Mailbox.maxQueuedEvents - events.count)
      events.append(contentsOf: new.prefix(room))
      eventsDropped &+= UInt64(new.count - min(room, new.count))
    }
    Mailbox.signal(controlFD)
  }

  /// SIGHUP: the control thread re-reads the configuration.
  func requestReload() {
    locked { reload = true }
    Mailbox.signal(controlFD)
  }

  /// The loop has left: every waiter gets an error from now on.
  func loopExited() {
    locked {
      loopGone = true
      pthread_cond_broadcast(cond)
    }
    Mailbox.signal(controlFD)
  }
}
