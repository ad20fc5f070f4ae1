// SPDX-License-Identifier: Apache-2.0
// Where the packet workers hand things to the control thread: lifetime events, reload and print
// requests; and the eventfds that wake each side. Changes go the other way through each worker's
// ChangeQueue; counters are read from what the workers publish. Nothing here stops a worker.
import CLinux
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// A mutex-protected handoff with an eventfd per worker and one for the control thread. A worker
/// takes the lock only when it has events or requests to hand over, never per packet.
public final class Mailbox: @unchecked Sendable {
  private let lock: UnsafeMutablePointer<pthread_mutex_t>
  /// One per worker: written by the control thread when it queued changes for that worker.
  public let loopFDs: [Int32]
  /// The first worker's (the only one with `--workers 1`).
  public var loopFD: Int32 { loopFDs[0] }
  /// Readable when a worker left something for the control thread.
  public let controlFD: Int32
  /// The eventfds behind ``loopFDs`` and ``controlFD``.
  private let owned: [SharedFD]
  // Guarded by `lock`.
  private var events: [SAEvent] = []
  private var peerEvents: [PeerEvent] = []
  private var reload = false
  private var printStats = false
  private var loopGone = false
  /// Events dropped because the control thread did not take them (bounded queue).
  private var eventsDropped: UInt64 = 0
  static let maxQueuedEvents = 65536

  /// - Parameter workers: packet loops.
  public init(workers: Int = 1) throws(SystemError) {
    var events: [SharedFD] = []
    for _ in 0...max(1, workers) {  // one per worker, and the control thread's (the last)
      events.append(SharedFD(try Sys.eventFD()))  // on a throw, those made close
    }
    owned = events
    controlFD = events.removeLast().raw
    loopFDs = events.map(\.raw)
    lock = .allocate(capacity: 1)
    pthread_mutex_init(lock, nil)
  }

  deinit {
    pthread_mutex_destroy(lock)
    lock.deallocate()
  }

  private func locked<T>(_ body: () -> T) -> T {
    pthread_mutex_lock(lock)
    defer { pthread_mutex_unlock(lock) }
    return body()
  }

  private static func signal(_ fd: Int32) { Sys.signal(eventFD: fd) }

  /// Empties an eventfd (after it polled readable).
  public static func drain(_ fd: Int32) { Sys.drain(eventFD: fd) }

  // MARK: control thread

  /// Whether a worker has left its loop (the dataplane is shutting down).
  public var loopStopped: Bool { locked { loopGone } }

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

  /// The peer moves the workers left (call after ``take()``, which empties the eventfd).
  public func takePeerEvents() -> [PeerEvent] {
    locked {
      let e = peerEvents
      peerEvents = []
      return e
    }
  }

  // MARK: worker threads

  /// Hands lifetime events to the control thread (bounded: beyond the bound they are counted).
  func post(events new: [SAEvent]) {
    locked { eventsDropped &+= Mailbox.enqueue(new, to: &events) }
    Mailbox.signal(controlFD)
  }

  /// Hands peer moves to the control thread (bounded like the lifetime events).
  func post(peerEvents new: [PeerEvent]) {
    locked { eventsDropped &+= Mailbox.enqueue(new, to: &peerEvents) }
    Mailbox.signal(controlFD)
  }

  /// Appends what fits under ``maxQueuedEvents`` to `queue`.
  /// - Returns: how many did not fit (counted as dropped).
  static func enqueue<T>(_ new: [T], to queue: inout [T]) -> UInt64 {
    let room = max(0, maxQueuedEvents - queue.count)
    queue.append(contentsOf: new.prefix(room))
    return UInt64(new.count - min(room, new.count))
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
    locked { loopGone = true }
    Mailbox.signal(controlFD)
  }
}
