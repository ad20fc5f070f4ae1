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
  static func unix(path: String) throws(SystemError) -> OwnedFD {
    if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
      let dir = String(path[..<slash])
      try Sys.makeDirectory(dir, 0o755, "cannot create the control socket's directory \(dir)")
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
    if let st = Sys.fileStatus(path) {
      guard st.st_mode & S_IFMT == S_IFSOCK else {
        throw SystemError(
          "cannot use \(path) as the control socket: a file that is not a socket is there", errno: EEXIST)
      }
      let probe = try Sys.socket(
        AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, "cannot create a socket")
      let alive = (try? Sys.connect(probe.raw, &address, length, "probe \(path)")) != nil
      probe.close()
      if alive { throw SystemError("another espd is listening on the control socket \(path)", errno: EADDRINUSE) }
      Sys.unlink(path)  // left by a crash
    }
    let fd = try Sys.socket(AF_UNIX, type, 0, "cannot create the control socket")
    do throws(SystemError) {
      try Sys.bind(fd.raw, &address, length, "cannot bind the control socket \(path)")
      try Sys.chmod(path, 0o600, "cannot set mode 0600 on the control socket \(path)")
      try Sys.listen(fd.raw, backlog: 64, "cannot listen on the control socket \(path)")
    } catch {
      Sys.unlink(path)  // ours, bound a moment ago (the descriptor closes on the way out)
      throw error
    }
    return fd
  }

  /// A TCP listening socket for the metrics endpoint.
  static func tcp(_ endpoint: Endpoint) throws(SystemError) -> OwnedFD {
    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
    let fd = try Sys.socket(endpoint.address.isV6 ? AF_INET6 : AF_INET, type, 0, "cannot create the metrics socket")
    try Sys.setOption(fd.raw, SOL_SOCKET, SO_REUSEADDR, 1, "cannot set SO_REUSEADDR on the metrics socket")
    var storage = SocketAddressStorage()
    let length = withUnsafeMutableBytes(of: &storage) { SocketAddress.write(endpoint, to: $0.baseAddress!) }
    try Sys.bind(fd.raw, &storage, length, "cannot bind the metrics endpoint tcp \(endpoint)")
    try Sys.listen(fd.raw, backlog: 16, "cannot listen on the metrics endpoint tcp \(endpoint)")
    return fd
  }
}
