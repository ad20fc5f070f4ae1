import CLinux
import Forwarding

// SPDX-License-Identifier: Apache-2.0
// The syscall layer, files and descriptors: open, close, read, write, poll, ioctl, eventfd,
// signalfd, epoll, and the paths of socket files.
#if canImport(Glibc)
  import Glibc
#endif

extension Sys {
  // MARK: descriptors

  /// Opens `path`.
  static func open(_ path: String, _ flags: Int32, _ what: @autoclosure () -> String) throws(SystemError) -> OwnedFD {
    OwnedFD(adopting: try call(what()) { Glibc.open(path, flags) })
  }

  /// close(2), for ``OwnedFD`` only. Not retried: on Linux the descriptor is released even when
  /// close reports EINTR or EIO, and another thread may already have its number. Those errors are
  /// ignored (nothing is left to undo); EBADF, a double close, stops espd.
  static func close(_ fd: Int32) {
    if Glibc.close(fd) != 0 { checkProgrammerError(errno, "close(\(fd))") }
  }

  /// read(2), as is: the loops and readers handle errno (EAGAIN, EINTR) themselves.
  @inline(__always)
  static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    Glibc.read(fd, buffer, count)
  }

  /// write(2), as is: the loops and writers handle errno (EAGAIN, EINTR) themselves.
  @inline(__always)
  static func write(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    Glibc.write(fd, buffer, count)
  }

  /// poll(2), as is (EINTR is the caller's: each loop decides what a signal means for it).
  @inline(__always)
  static func poll(_ fds: inout [pollfd], timeout milliseconds: Int32) -> Int32 {
    Glibc.poll(&fds, nfds_t(fds.count), milliseconds)
  }

  /// ioctl(2) with a pointer argument, as is (-1 and errno on failure).
  @inline(__always)
  static func ioctl(_ fd: Int32, _ request: UInt, _ argument: UnsafeMutableRawPointer?) -> Int32 {
    CLinux_ioctl(fd, request, argument)
  }

  // MARK: eventfd, signalfd, epoll

  /// A non-blocking eventfd, counter 0.
  static func eventFD() throws(SystemError) -> OwnedFD {
    OwnedFD(adopting: try call("cannot create an eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) })
  }

  /// Adds 1 to an eventfd, waking its reader. Only EAGAIN can fail it (the counter is near 2^64,
  /// so the reader is woken already): the result says whether it was added.
  @discardableResult
  static func signal(eventFD fd: Int32) -> Bool {
    var one: UInt64 = 1
    return Glibc.write(fd, &one, 8) == 8
  }

  /// Empties an eventfd after it polled readable. EAGAIN (another reader emptied it first) leaves
  /// it empty too: the result says whether there was a count to take.
  @discardableResult
  static func drain(eventFD fd: Int32) -> Bool {
    var value: UInt64 = 0
    return Glibc.read(fd, &value, 8) == 8
  }

  /// Blocks `signals` for the calling thread (threads it starts inherit the mask).
  static func block(_ signals: inout sigset_t) throws(SystemError) {
    let r = pthread_sigmask(SIG_BLOCK, &signals, nil)
    guard r == 0 else { throw SystemError("cannot block signals", errno: r) }
  }

  /// A non-blocking signalfd for `signals` (blocked first with ``block(_:)``).
  static func signalFD(_ signals: inout sigset_t) throws(SystemError) -> OwnedFD {
    OwnedFD(
      adopting: try call("cannot create a signalfd") { signalfd(-1, &signals, Int32(SFD_NONBLOCK | SFD_CLOEXEC)) })
  }

  /// An epoll descriptor.
  static func epoll(_ what: @autoclosure () -> String) throws(SystemError) -> OwnedFD {
    OwnedFD(adopting: try call(what()) { epoll_create1(Int32(EPOLL_CLOEXEC)) })
  }

  /// Watches `fd` for input on the epoll descriptor `epoll` (the event carries `fd`).
  static func watch(_ fd: Int32, on epoll: Int32, _ what: @autoclosure () -> String) throws(SystemError) {
    var event = epoll_event()
    event.events = UInt32(EPOLLIN.rawValue)
    event.data.fd = fd
    _ = try call(what()) { epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) }
  }

  // MARK: paths

  /// lstat(2): the file at `path` itself (not what a symlink points to), or nil if there is none.
  static func fileStatus(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
  }

  /// Removes the file at `path` (a stale or our own socket file). Best effort by design: a file
  /// already gone is the wanted outcome, and one that cannot be removed makes the next bind fail
  /// with its own error. The result says whether it was removed.
  @discardableResult
  static func unlink(_ path: String) -> Bool { Glibc.unlink(path) == 0 }

  /// chmod(2).
  static func chmod(_ path: String, _ mode: mode_t, _ what: @autoclosure () -> String) throws(SystemError) {
    _ = try call(what()) { Glibc.chmod(path, mode) }
  }

  /// Creates the directory `path` unless it exists.
  static func makeDirectory(_ path: String, _ mode: mode_t, _ what: @autoclosure () -> String) throws(SystemError) {
    if mkdir(path, mode) != 0 && errno != EEXIST { throw SystemError(what(), errno: errno) }
  }
}
