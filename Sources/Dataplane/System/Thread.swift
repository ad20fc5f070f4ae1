// SPDX-License-Identifier: Apache-2.0
// A POSIX thread running one closure, joined explicitly (the control plane's thread).
import CLinux

#if canImport(Glibc)
  import Glibc
#endif

/// A thread started with pthread_create. It inherits the creator's signal mask, so create it after
/// ``SignalEvents`` has blocked the signals the loop reads from its signalfd.
final class PThread {
  private final class Box {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
  }

  private var thread = pthread_t()

  /// Starts `body` on a new thread.
  /// - Throws: ``SystemError`` if the thread cannot be created.
  init(name: String, _ body: @escaping () -> Void) throws(SystemError) {
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    let r = pthread_create(
      &thread, nil,
      { raw in
        guard let raw else { return nil }
        let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
        box.body()
        return nil
      }, box)
    guard r == 0 else {
      Unmanaged<Box>.fromOpaque(box).release()
      throw SystemError("cannot start the \(name) thread", errno: r)
    }
    Sys.setName(of: thread, name)  // cosmetic (top, perf): a name refused changes nothing
  }

  /// Waits for the thread to finish.
  func join() { pthread_join(thread, nil) }
}
