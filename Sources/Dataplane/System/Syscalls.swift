// SPDX-License-Identifier: Apache-2.0
// The syscall layer: every system call the Dataplane makes goes through `Sys` (this file, and
// Sys+File, Sys+Socket, Sys+Process by concern), and every descriptor it opens is an ``OwnedFD``.
// Control-path wrappers retry EINTR and throw a ``SystemError`` naming the operation; hot-path
// wrappers are inlined and leave errno to the loop that handles it. A bad descriptor or buffer
// (EBADF, EFAULT) is a bug, not an I/O error: it stops espd (DESIGN.md, "One syscall layer").
// scripts/lint.sh keeps raw calls out of the rest of the module.
#if canImport(Glibc)
  import Glibc
#endif

/// An I/O failure: what espd was doing, and the errno it got.
public struct SystemError: Error, CustomStringConvertible, Equatable {
  /// What was being done, e.g. "cannot open /dev/net/tun".
  public let operation: String
  public let errno: Int32

  public init(_ operation: String, errno: Int32) {
    self.operation = operation
    self.errno = errno
  }

  public var description: String {
    var s = "\(operation): \(String(cString: strerror(errno)))"
    if errno == EPERM || errno == EACCES { s += " (are you root / CAP_NET_ADMIN?)" }
    return s
  }
}

/// The outcome of a non-blocking call.
public enum IOResult<T> {
  case done(T)
  case wouldBlock
}

/// Thin wrappers over libc: retry on EINTR, `.wouldBlock` on EAGAIN, throw the rest.
enum Sys {
  /// Runs `body` until it does not fail with EINTR.
  @inline(__always)
  static func retrying<T: BinaryInteger>(_ what: @autoclosure () -> String, _ body: () -> T) throws(SystemError)
    -> IOResult<T>
  {
    while true {
      let r = body()
      if r >= 0 { return .done(r) }
      let e = errno
      if e == EINTR { continue }
      if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
      checkProgrammerError(e, what())
      throw SystemError(what(), errno: e)
    }
  }

  /// Like ``retrying(_:_:)`` for calls where EAGAIN cannot happen or is an error.
  @inline(__always)
  static func call<T: BinaryInteger>(_ what: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T {
    while true {
      let r = body()
      if r >= 0 { return r }
      let e = errno
      if e == EINTR { continue }
      checkProgrammerError(e, what())
      throw SystemError(what(), errno: e)
    }
  }

  /// Stops on errors only a bug can cause: a descriptor that is not open (closed twice, or never
  /// opened) or a pointer outside the address space. Going on would act on whatever file reuses
  /// the number.
  static func checkProgrammerError(_ e: Int32, _ what: @autoclosure () -> String) {
    precondition(e != EBADF && e != EFAULT, "\(what()): \(String(cString: strerror(e))) (a bug in espd)")
  }
}
