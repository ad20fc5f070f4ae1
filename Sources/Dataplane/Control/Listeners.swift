// SPDX-License-Identifier: Apache-2.0
// The control plane's listening sockets: the Unix control socket (mode 0600, owner-only) and the
// TCP metrics endpoint.
import CLinux
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

enum Listeners {
  /// Creates the control socket at `path`: its directory if missing, a stale socket file replaced,
  /// mode 0600 set before `listen` (so no other user can ever connect through the file system).
  /// - Throws: ``SystemError``, e.g. when another espd is listening there.
  static func unix(path: String) throws(SystemError) -> Int32 {
    if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
      let dir = String(path[..<slash])
      if mkdir(dir, 0o755) != 0 && errno != EEXIST {
        throw SystemError("cannot create the control socket's directory \(dir)", errno: errno)
      }
    }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
      throw SystemError("control socket path \(path) is too long", errno: ENAMETOOLONG)
    }
    withUnsafeMutableBytes(of: &address.sun_path) { b in for (i, c) in bytes.enumerated() { b[i] = c } }
    let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)

    // A socket file already there: another espd if it answers, else left by a crash.
    var st = stat()
    if lstat(path, &st) == 0 {
      guard st.st_mode & S_IFMT == S_IFSOCK else {
        throw SystemError(
          "cannot use \(path) as the control socket: a file that is not a socket is there", errno: EEXIST)
      }
      let probe = try Sys.call("cannot create a socket") {
        socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
      }
      let alive = withUnsafePointer(to: &address) { CLinux_connect(probe, $0, length) } == 0
      close(probe)
      if alive { throw SystemError("another espd is listening on the control socket \(path)", errno: EADDRINUSE) }
      unlink(path)
    }
    let fd = try Sys.call("cannot create the control socket") { socket(AF_UNIX, type, 0) }
    do throws(SystemError) {
      _ = try Sys.call("cannot bind the control socket \(path)") {
        withUnsafePointer(to: &address) { CLinux_bind(fd, $0, length) }
      }
      _ = try Sys.call("cannot set mode 0600 on the control socket \(path)") { chmod(path, 0o600) }
      _ = try Sys.call("cannot listen on the control socket \(path)") { listen(fd, 64) }
    } catch {
      close(fd)
      unlink(path)
      throw error
    }
    return fd
  }

  /// A TCP listening socket for the metrics endpoint.
  static func tcp(_ endpoint: Endpoint) throws(SystemError) -> Int32 {
    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
    let fd = try Sys.call("cannot create the metrics socket") {
      socket(endpoint.address.isV6 ? AF_INET6 : AF_INET, type, 0)
    }
    do throws(SystemError) {
      try Sys.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "cannot set SO_REUSEADDR on the metrics socket")
      var storage = SocketAddressStorage()
      let length = withUnsafeMutableBytes(of: &storage) { SocketAddress.write(endpoint, to: $0.baseAddress!) }
      _ = try Sys.call("cannot bind the metrics endpoint tcp \(endpoint)") {
        withUnsafePointer(to: &storage) { CLinux_bind(fd, $0, length) }
      }
      _ = try Sys.call("cannot listen on the metrics endpoint tcp \(endpoint)") { listen(fd, 16) }
    } catch {
      close(fd)
      throw error
    }
    return fd
  }

  /// The uid of the process at the other end of a Unix socket (SO_PEERCRED).
  static func peerUID(_ fd: Int32) -> uid_t? {
    var cred = CLinux_ucred()
    var length = socklen_t(MemoryLayout<CLinux_ucred>.size)
    guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0 else { return nil }
    return cred.uid
  }
}
