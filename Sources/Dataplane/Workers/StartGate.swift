// SPDX-License-Identifier: Apache-2.0
// Starting several workers together: each sets up its io_uring on its own thread (a SINGLE_ISSUER
// ring belongs to the thread that made it), reports, and waits for the word to run.

#if canImport(Glibc)
  import Glibc
#endif

/// A one-shot rendezvous between the starting thread and `count` worker threads.
final class StartGate: @unchecked Sendable {
  private var lock = pthread_mutex_t()
  private var cond = pthread_cond_t()
  private let count: Int
  private var arrived = 0
  private var failed = 0
  private var decision: Bool? = nil

  init(workers count: Int) {
    self.count = count
    pthread_mutex_init(&lock, nil)
    pthread_cond_init(&cond, nil)
  }

  deinit {
    pthread_cond_destroy(&cond)
    pthread_mutex_destroy(&lock)
  }

  /// A worker: reports whether its set-up worked, then waits for the decision.
  /// - Returns: whether to run.
  func arrive(ready: Bool) -> Bool {
    pthread_mutex_lock(&lock)
    defer { pthread_mutex_unlock(&lock) }
    arrived += 1
    if !ready { failed += 1 }
    pthread_cond_broadcast(&cond)
    while decision == nil { pthread_cond_wait(&cond, &lock) }
    return decision!
  }

  /// The starting thread: waits for every worker to report.
  /// - Returns: whether every one is ready.
  func waitForAll() -> Bool {
    pthread_mutex_lock(&lock)
    defer { pthread_mutex_unlock(&lock) }
    while arrived < count { pthread_cond_wait(&cond, &lock) }
    return failed == 0
  }

  /// The starting thread: lets every worker run, or leave.
  func decide(run: Bool) {
    pthread_mutex_lock(&lock)
    decision = run
    pthread_cond_broadcast(&cond)
    pthread_mutex_unlock(&lock)
  }
}
