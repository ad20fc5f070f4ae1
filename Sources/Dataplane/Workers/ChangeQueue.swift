// SPDX-License-Identifier: Apache-2.0
// How a change reaches a worker without stopping it: the control thread appends it to the worker's
// queue; the worker applies everything queued before it processes packets it collected (so a packet
// that arrives after the control socket said "ok" always meets the change), and publishes how far it
// got. No worker waits for the control thread, and the control thread waits for no worker.
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// The changes waiting for one worker. The control thread pushes; the worker takes them all between
/// batches. The lock is taken only when something is queued: the worker's check per batch is one
/// relaxed load.
final class ChangeQueue: @unchecked Sendable {
  private let lock: UnsafeMutablePointer<pthread_mutex_t>
  private var pending: [TableChange] = []
  /// Things the worker let go of that are costly to free (big tables): freed by the control thread.
  private var garbage: [Any] = []
  /// [0] changes queued and not taken; [1] changes applied in all (the worker's progress).
  private let words = SharedWords(count: 2)
  /// Changes pushed in all (control thread only).
  private(set) var pushed: UInt64 = 0
  /// The worker's wake-up eventfd (its mailbox descriptor), or -1 (tests).
  let wakeFD: Int32

  init(wakeFD: Int32 = -1) {
    self.wakeFD = wakeFD
    lock = .allocate(capacity: 1)
    pthread_mutex_init(lock, nil)
  }

  deinit {
    pthread_mutex_destroy(lock)
    lock.deallocate()
    words.free()
  }

  // MARK: control thread

  /// Queues changes and wakes the worker if the queue was empty (an idle worker applies them at once,
  /// so that the queue stays short and what it lets go of is freed soon).
  func push(_ changes: [TableChange]) {
    guard !changes.isEmpty else { return }
    pthread_mutex_lock(lock)
    let wasEmpty = pending.isEmpty
    pending.append(contentsOf: changes)
    words.store(0, UInt64(pending.count))
    pthread_mutex_unlock(lock)
    pushed &+= UInt64(changes.count)
    if wasEmpty { wake() }
  }

  /// Wakes the worker (its loop applies what is queued between batches).
  func wake() {
    guard wakeFD >= 0 else { return }
    Sys.signal(eventFD: wakeFD)
  }

  /// Changes the worker has applied in all.
  var applied: UInt64 { words.loadAcquire(1) }

  /// Takes what the worker let go of (to be freed on the control thread).
  func takeGarbage() -> [Any] {
    pthread_mutex_lock(lock)
    defer { pthread_mutex_unlock(lock) }
    let g = garbage
    garbage = []
    return g
  }

  // MARK: worker

  /// Whether anything is queued (one relaxed load).
  @inline(__always) var hasPending: Bool { words.load(0) != 0 }

  /// Takes every queued change, oldest last (so that `popLast()` hands each out uniquely owned).
  func take() -> [TableChange] {
    pthread_mutex_lock(lock)
    var taken: [TableChange] = []
    swap(&taken, &pending)
    words.store(0, 0)
    pthread_mutex_unlock(lock)
    taken.reverse()
    return taken
  }

  /// Records that `n` more changes were applied.
  func markApplied(_ n: Int) { words.storeRelease(1, words.load(1) &+ UInt64(n)) }

  /// Hands something costly to free to the control thread.
  func discard(_ thing: Any) {
    pthread_mutex_lock(lock)
    garbage.append(thing)
    pthread_mutex_unlock(lock)
  }
}
