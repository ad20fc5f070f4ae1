// SPDX-License-Identifier: Apache-2.0
// Where the control thread and the packet workers meet: the control thread parks every worker to
// swap a snapshot in or count; workers hand lifetime events, reload and print requests the other way.
import CIO

#if canImport(Glibc)
  import Glibc
#endif

/// What the control thread does to the workers' state while every worker is parked.
public protocol ParkedDataplane: AnyObject {
  /// Swaps `table` in on every worker (tunnel state carried over); returns the snapshot it replaced.
  func install(_ table: SATable) -> SATable?
  /// Every counter, summed over the workers.
  func snapshot() -> StatsSnapshot
}

/// A mutex-protected handoff with an eventfd per worker and one for the control thread. A worker
/// takes the lock only when its eventfd fired or it has events to hand over, never per packet.
/// A change or a stats request parks every worker between batches, does its work on the control
/// thread, and lets them go: a snapshot swap or a count is then atomic across workers (DESIGN.md:
/// no lock per packet; snapshots are immutable tables swapped between batches).
public final class Mailbox: @unchecked Sendable {
  private let lock: UnsafeMutablePointer<pthread_mutex_t>
  private let cond: UnsafeMutablePointer<pthread_cond_t>
  /// One per worker: readable when the control thread wants the workers parked.
  public let loopFDs: [Int32]
  /// The first worker's (the only one with `--workers 1`).
  public var loopFD: Int32 { loopFDs[0] }
  /// Readable when a worker left something for the control thread.
  public let controlFD: Int32
  /// How many workers must park (fewer than `loopFDs` after a fallback to one loop); set before
  /// the control thread starts.
  public var workers: Int
  /// Where parked work is done; set before the control thread starts (weak: the workers hold
  /// the mailbox).
  public weak var dataplane: (any ParkedDataplane)?

  // Guarded by `lock`.
  private var pauseWanted: UInt64 = 0
  private var resumed: UInt64 = 0
  private var parked = 0
  private var events: [SAEvent] = []
  private var reload = false
  private var printStats = false
  private var loopGone = false
  /// Events dropped because the control thread did not take them (bounded queue).
  private var eventsDropped: UInt64 = 0
  static let maxQueuedEvents = 65536

  /// - Parameter workers: packet loops that will park on request.
  public init(workers: Int = 1) throws(SystemError) {
    var fds: [Int32] = []
    do throws(SystemError) {
      for _ in 0...max(1, workers) {  // one per worker, and the control thread's (the last)
        fds.append(try Sys.call("cannot create an eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) })
      }
    } catch {
      for fd in fds { close(fd) }
      throw error
    }
    controlFD = fds.removeLast()
    loopFDs = fds
    self.workers = max(1, workers)
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
    for fd in loopFDs { close(fd) }
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

  /// Parks every worker between batches, runs `body` while they wait, and lets them go. Called by
  /// the control thread only (one pause at a time).
  /// - Throws: ``Failure`` when a worker has stopped, or not every worker parked within 5 seconds
  ///   (`body` then does not run).
  public func paused<T>(_ body: () -> T) throws(Failure) -> T {
    pthread_mutex_lock(lock)
    defer { pthread_mutex_unlock(lock) }
    guard !loopGone else { throw .loopStopped }
    // Workers still leaving the previous pause must not be counted as parked for this one.
    _ = wait(until: { parked == 0 || loopGone }, seconds: 5)
    pauseWanted += 1
    let generation = pauseWanted
    for fd in loopFDs.prefix(workers) { Mailbox.signal(fd) }
    _ = wait(until: { parked == workers || loopGone }, seconds: 5)
    defer {
      resumed = max(resumed, generation)
      pthread_cond_broadcast(cond)
    }
    guard parked == workers, !loopGone else { throw loopGone ? .loopStopped : .timedOut }
    return body()
  }

  /// Hands a new snapshot to the workers and returns once every one uses it (so that a controller
  /// told "ok" may rely on it, e.g. switch the peer's outbound SA only once this end accepts the
  /// new SPI). The replaced snapshot is released here, with its key material, off the packet path.
  public func publish(_ table: SATable) throws(Failure) {
    var old: SATable? = nil
    try paused { old = dataplane?.install(table) }
    withExtendedLifetime(old) {}  // the last reference goes here, after the lock
  }

  /// Every counter, summed over the workers.
  public func stats() throws(Failure) -> StatsSnapshot {
    guard let dataplane else { throw .loopStopped }
    return try paused { dataplane.snapshot() }
  }

  /// What the workers left: lifetime events, whether SIGHUP asked for a reload, whether SIGUSR1
  /// asked for the counters to be printed.
  public func take() -> (events: [SAEvent], reload: Bool, printStats: Bool, eventsDropped: UInt64) {
    Mailbox.drain(controlFD)
    return locked {
      let e = events
      events = []
      let r = (e, reload, printStats, eventsDropped)
      reload = false
      printStats = false
      return r
    }
  }

  // MARK: worker threads

  /// Called by a worker between batches once its eventfd fired: parks it while the control thread
  /// works, if a pause is wanted.
  func park(worker: Int) {
    Mailbox.drain(loopFDs[worker])
    pthread_mutex_lock(lock)
    defer { pthread_mutex_unlock(lock) }
    guard pauseWanted > resumed, !loopGone else { return }
    let generation = pauseWanted
    parked += 1
    pthread_cond_broadcast(cond)
    // The control thread always resumes a pause it started (also when it gives up waiting).
    while resumed < generation { pthread_cond_wait(cond, lock) }
    parked -= 1
    pthread_cond_broadcast(cond)
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

  /// SIGUSR1: the control thread prints the counters of every worker.
  func requestStatsPrint() {
    locked { printStats = true }
    Mailbox.signal(controlFD)
  }

  /// A worker has left: every waiter gets an error from now on.
  func loopExited() {
    locked {
      loopGone = true
      pthread_cond_broadcast(cond)
    }
    Mailbox.signal(controlFD)
  }
}
