// SPDX-License-Identifier: Apache-2.0
// The client side of the control socket, for the `espd tunnel|rekey|sa|stats|events` commands.
import CLinux
import ESP

#if canImport(Glibc)
  import Glibc
#endif

/// A connection to a running espd's control socket: a request line out, an answer line back.
public final class ControlClient {
  private let owned: OwnedFD
  var fd: Int32 { owned.raw }
  private var buffer: [UInt8] = []

  /// Connects.
  /// - Parameters:
  ///   - path: the control socket.
  ///   - timeoutSeconds: how long to wait for an answer (0: forever, for `events`).
  /// - Throws: ``SystemError`` naming the socket, with a hint when espd is not running there.
  public init(path: String, timeoutSeconds: Int = 30) throws(SystemError) {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
      throw SystemError("control socket path \(path) is empty or too long", errno: ENAMETOOLONG)
    }
    withUnsafeMutableBytes(of: &address.sun_path) { b in for (i, c) in bytes.enumerated() { b[i] = c } }
    let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
    let fd = try Sys.socket(
      AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, "cannot create a socket")
    if timeoutSeconds > 0 {
      var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
      // Best effort: without the timeout a silent espd makes the command wait (as `events` does).
      try? Sys.setOption(fd.raw, SOL_SOCKET, SO_RCVTIMEO, &tv, "cannot set SO_RCVTIMEO")
    }
    do throws(SystemError) {
      try Sys.connect(fd.raw, &address, length, "cannot connect to the control socket \(path)")
    } catch {
      let e = error.errno
      let hint = e == ENOENT || e == ECONNREFUSED ? " (is espd running with this control socket? see --control)" : ""
      throw SystemError("cannot connect to the control socket \(path)\(hint)", errno: e)
    }
    owned = fd
  }

  /// Sends one request line.
  public func send(_ line: String) throws(SystemError) {
    var bytes = Array(line.utf8)
    bytes.append(10)
    defer { KeyMaterial.wipe(&bytes) }
    var sent = 0
    while sent < bytes.count {
      let n = bytes.withUnsafeBytes { Sys.write(fd, $0.baseAddress! + sent, bytes.count - sent) }
      if n < 0 {
        if errno == EINTR { continue }
        throw SystemError("cannot write to the control socket", errno: errno)
      }
      sent += n
    }
  }

  /// The next line from espd, or nil when it closed the connection.
  public func readLine() throws(SystemError) -> String? {
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      if let nl = buffer.firstIndex(of: 10) {
        let line = String(decoding: buffer[0..<nl], as: UTF8.self)
        buffer.removeFirst(nl + 1)
        return line
      }
      let n = chunk.withUnsafeMutableBytes { Sys.read(fd, $0.baseAddress, $0.count) }
      if n == 0 { return buffer.isEmpty ? nil : String(decoding: buffer, as: UTF8.self) }
      if n < 0 {
        if errno == EINTR { continue }
        let e = errno
        throw SystemError(
          e == EAGAIN ? "no answer from the control socket (timed out)" : "cannot read from the control socket",
          errno: e)
      }
      buffer += chunk[0..<n]
    }
  }

  /// Sends a request and returns its answer line.
  public func request(_ line: String) throws(SystemError) -> String {
    try send(line)
    guard let answer = try readLine() else {
      throw SystemError("espd closed the control connection without answering", errno: ECONNRESET)
    }
    return answer
  }
}
