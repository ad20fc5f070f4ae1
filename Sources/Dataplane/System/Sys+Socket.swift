import CLinux
import Forwarding

// SPDX-License-Identifier: Apache-2.0
// The syscall layer, sockets: creation, options, bind/listen/accept/connect, and the datagram
// calls of the loops and the IKE channel.
#if canImport(Glibc)
  import Glibc
#endif

extension Sys {
  // MARK: setting up

  /// socket(2).
  static func socket(_ family: Int32, _ type: Int32, _ proto: Int32 = 0, _ what: @autoclosure () -> String)
    throws(SystemError) -> OwnedFD
  {
    OwnedFD(adopting: try call(what()) { Glibc.socket(family, type, proto) })
  }

  /// bind(2) to the sockaddr in `address` (`length` bytes of it).
  static func bind<Address>(
    _ fd: Int32, _ address: inout Address, _ length: socklen_t, _ what: @autoclosure () -> String
  ) throws(SystemError) {
    _ = try call(what()) { withUnsafePointer(to: &address) { CLinux_bind(fd, $0, length) } }
  }

  /// connect(2) to the sockaddr in `address` (blocking sockets: it completes or fails here).
  static func connect<Address>(
    _ fd: Int32, _ address: inout Address, _ length: socklen_t, _ what: @autoclosure () -> String
  ) throws(SystemError) {
    _ = try call(what()) { withUnsafePointer(to: &address) { CLinux_connect(fd, $0, length) } }
  }

  /// listen(2).
  static func listen(_ fd: Int32, backlog: Int32, _ what: @autoclosure () -> String) throws(SystemError) {
    _ = try call(what()) { Glibc.listen(fd, backlog) }
  }

  /// accept4(2) of one waiting connection, non-blocking and close-on-exec.
  /// - Returns: nil when none is waiting, or the kernel refused this one (EMFILE, ECONNABORTED, a
  ///   signal): the listener stays readable if more wait, and the caller tries again at its next poll.
  static func accept(_ listener: Int32) -> OwnedFD? {
    let fd = CLinux_accept(listener, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
    return fd < 0 ? nil : OwnedFD(adopting: fd)
  }

  /// shutdown(2) of the write side. A peer already gone makes it fail (ENOTCONN), which changes
  /// nothing for the caller: the result says whether it was done.
  @discardableResult
  static func shutdownWrite(_ fd: Int32) -> Bool { Glibc.shutdown(fd, Int32(SHUT_WR)) == 0 }

  // MARK: options

  /// setsockopt of one integer value.
  static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ what: @autoclosure () -> String)
    throws(SystemError)
  {
    var v = value
    try setOption(fd, level, name, &v, what())
  }

  /// setsockopt of a value of any layout (a timeval, a mark).
  static func setOption<Value: BitwiseCopyable>(
    _ fd: Int32, _ level: Int32, _ name: Int32, _ value: inout Value, _ what: @autoclosure () -> String
  ) throws(SystemError) {
    let size = socklen_t(MemoryLayout<Value>.size)
    _ = try call(what()) { setsockopt(fd, level, name, &value, size) }
  }

  /// getsockopt of a value of type `Value` (an Int32, a ucred), or nil if the kernel refused.
  static func option<Value: BitwiseCopyable>(_ fd: Int32, _ level: Int32, _ name: Int32, initial: Value) -> Value? {
    var value = initial
    var length = socklen_t(MemoryLayout<Value>.size)
    return getsockopt(fd, level, name, &value, &length) == 0 ? value : nil
  }

  /// Sets a socket buffer: the FORCE option (CAP_NET_ADMIN, which `espd run` has) so that the
  /// sysctl maxima (net.core.rmem_max, wmem_max) do not cut it down, else the plain one, capped.
  /// Best effort by design: what the kernel granted is read back for the caller to report.
  /// - Returns: the size the kernel reports for `plain` (twice the request, socket(7)); 0 if unknown.
  @discardableResult
  static func setBufferSize(_ fd: Int32, force: Int32, plain: Int32, _ bytes: Int) -> Int {
    let n = Int32(clamping: bytes)
    do throws(SystemError) { try setOption(fd, SOL_SOCKET, force, n, "setsockopt") } catch {
      try? setOption(fd, SOL_SOCKET, plain, n, "setsockopt")  // capped: the read-back shows by how much
    }
    return Int(option(fd, SOL_SOCKET, plain, initial: Int32(0)) ?? 0)
  }

  /// The uid of the process at the other end of a Unix socket (SO_PEERCRED).
  static func peerUID(_ fd: Int32) -> uid_t? { option(fd, SOL_SOCKET, SO_PEERCRED, initial: CLinux_ucred())?.uid }

  // MARK: datagrams (hot: as is, errno to the caller)

  /// sendmsg(2).
  @inline(__always)
  static func sendMessage(_ fd: Int32, _ message: UnsafePointer<msghdr>, _ flags: Int32) -> Int {
    sendmsg(fd, message, flags)
  }

  /// recvmsg(2).
  @inline(__always)
  static func receiveMessage(_ fd: Int32, _ message: UnsafeMutablePointer<msghdr>, _ flags: Int32) -> Int {
    recvmsg(fd, message, flags)
  }

  /// sendmmsg(2): how many messages went (or -1 and errno).
  @inline(__always)
  static func sendMessages(_ fd: Int32, _ messages: UnsafeMutablePointer<CLinux_mmsghdr>, _ count: Int) -> Int32 {
    CLinux_sendmmsg(fd, messages, UInt32(count), 0)
  }

  /// recvmmsg(2) without blocking: how many messages came (or -1 and errno).
  @inline(__always)
  static func receiveMessages(_ fd: Int32, _ messages: UnsafeMutablePointer<CLinux_mmsghdr>, _ count: Int) -> Int32 {
    CLinux_recvmmsg(fd, messages, UInt32(count), Int32(MSG_DONTWAIT), nil)
  }

  /// sendto(2) without blocking, to the sockaddr at `address`.
  @inline(__always)
  static func send(
    _ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int, to address: UnsafeRawPointer, _ length: socklen_t
  ) -> Int {
    CLinux_sendto(fd, buffer, count, Int32(MSG_DONTWAIT), address, length)
  }

  /// recvfrom(2) without blocking; the sender's sockaddr into `address`.
  @inline(__always)
  static func receive(
    _ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, from address: UnsafeMutableRawPointer,
    _ length: inout socklen_t
  ) -> Int {
    CLinux_recvfrom(fd, buffer, count, Int32(MSG_DONTWAIT), address, &length)
  }
}
