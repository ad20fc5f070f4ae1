// SPDX-License-Identifier: Apache-2.0
// Every libc call the Dataplane makes goes through here: EINTR retried, EAGAIN as a value, other
// errors as a typed error naming the operation (STYLE.md §3).

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
      throw SystemError(what(), errno: e)
    }
  }

  /// setsockopt of one integer value.
  static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ what: String) throws(SystemError)
  {
    var v = value
    _ = try call(what) { setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) }
  }

  /// Sets O_NONBLOCK on a descriptor.
  static func setNonBlocking(_ fd: Int32) throws(SystemError) {
    let flags = try call("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
    _ = try call("fcntl(F_SETFL)") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
  }
}
