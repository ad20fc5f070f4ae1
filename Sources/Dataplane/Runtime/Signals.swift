// SPDX-License-Identifier: Apache-2.0
// SIGINT, SIGTERM and SIGUSR1 as readable events (signalfd), so the loop handles them between batches.
import CLinux

#if canImport(Glibc)
  import Glibc
#endif

/// A signalfd for SIGINT, SIGTERM (stop), SIGUSR1 (print stats) and SIGHUP (reload the config). Blocks those signals for the
/// calling thread; create it on the loop's thread before any other thread starts.
public final class SignalEvents {
  private let owned: OwnedFD
  public var fd: Int32 { owned.raw }

  public init() throws(SystemError) {
    var set = sigset_t()
    sigemptyset(&set)
    for s in [SIGINT, SIGTERM, SIGUSR1, SIGHUP] { sigaddset(&set, s) }
    try Sys.block(&set)
    owned = try Sys.signalFD(&set)
  }

  /// Reads every pending signal; applies them to `core`.
  func drain(into core: LoopCore) {
    var info = signalfd_siginfo()
    while Sys.read(fd, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
      apply(Int32(info.ssi_signo), to: core)
    }
  }

  func apply(_ signal: Int32, to core: LoopCore) {
    switch signal {
    case SIGINT, SIGTERM: core.requestStop()
    case SIGUSR1: core.statsRequested = true
    case SIGHUP: core.reloadRequested = true
    default: break
    }
  }
}
