// SPDX-License-Identifier: Apache-2.0
// A blocking AF_UNIX stream client that sends request bytes and reads answer lines, with as few
// system calls and copies as it can: one send per request (or per run of pipelined requests), one
// read per batch of answers, a newline found with memchr over the new bytes only.

#if canImport(Glibc)
  import Glibc
#endif

/// One connection to espd's control socket. Not thread-safe; one per benchmark case.
final class LineSocket {
  /// The connected socket (blocking).
  let fd: Int32
  /// Received bytes not yet returned as lines are `buffer[start..<end]`; `scanned` is where the
  /// search for the next newline resumes.
  private var buffer: UnsafeMutablePointer<UInt8>
  private var capacity: Int
  private var start = 0
  private var end = 0
  private var scanned = 0
  /// Spin on non-blocking reads instead of sleeping in read(2) while waiting for an answer: the
  /// answer time then leaves out this process's own wake-up (tens of µs on some VMs), at the cost
  /// of a busy CPU.
  var busyPoll = false
  /// The least free space a read is given (the buffer is compacted or grown below it).
  private static let minRead = 1 << 16

  /// Connects to `path`.
  /// - Throws: ``BenchIOError`` with the errno text (`No such file or directory`, `Connection refused`).
  init(path: String, bufferBytes: Int = 1 << 20) throws(BenchIOError) {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let name = Array(path.utf8)
    guard name.count < MemoryLayout.size(ofValue: addr.sun_path) else {
      throw BenchIOError(
        "control socket path \(path): longer than \(MemoryLayout.size(ofValue: addr.sun_path) - 1) bytes")
    }
    withUnsafeMutableBytes(of: &addr.sun_path) { p in
      p.copyBytes(from: name)
      p[name.count] = 0
    }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw BenchIOError("socket(AF_UNIX)", errno: errno) }
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard rc == 0 else {
      let e = errno
      close(fd)
      throw BenchIOError("cannot connect to \(path)", errno: e)
    }
    self.fd = fd
    capacity = max(bufferBytes, 2 * LineSocket.minRead)
    buffer = .allocate(capacity: capacity)
  }

  deinit {
    close(fd)
    buffer.deallocate()
  }

  /// Sends `count` bytes (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE).
  /// - Returns: false if the connection failed.
  @inline(__always)
  func send(_ base: UnsafeRawPointer, _ count: Int) -> Bool {
    var done = 0
    while done < count {
      let n = Glibc.send(fd, base + done, count - done, Int32(MSG_NOSIGNAL))
      if n > 0 {
        done += n
      } else if n < 0 && errno == EINTR {
        continue
      } else {
        return false
      }
    }
    return true
  }

  /// The next answer line, without its newline; valid until the next call.
  /// - Parameter wait: read from the socket when no complete line is buffered (false: return nil then).
  /// - Returns: nil at end of stream or on an error (``closed`` tells them apart from "nothing buffered").
  @inline(__always)
  func readLine(wait: Bool = true) -> UnsafeBufferPointer<UInt8>? {
    while true {
      if scanned < end, let p = memchr(buffer + scanned, 10, end - scanned) {
        let nl = UnsafeMutableRawPointer(mutating: p).assumingMemoryBound(to: UInt8.self) - buffer
        let line = UnsafeBufferPointer(start: buffer + start, count: nl - start)
        start = nl + 1
        scanned = start
        return line
      }
      scanned = end
      guard wait, fill() else { return nil }
    }
  }

  /// The connection ended (end of stream or an error) while reading.
  private(set) var closed = false

  /// Reads what the socket has into the free space, compacting or growing the buffer first.
  private func fill() -> Bool {
    if start == end {
      (start, end, scanned) = (0, 0, 0)
    } else if capacity - end < LineSocket.minRead {
      if start > 0 {
        memmove(buffer, buffer + start, end - start)
        (end, scanned, start) = (end - start, scanned - start, 0)
      }
      if capacity - end < LineSocket.minRead {
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
        bigger.update(from: buffer, count: end)
        buffer.deallocate()
        buffer = bigger
        capacity *= 2
      }
    }
    while true {
      let n =
        busyPoll ? recv(fd, buffer + end, capacity - end, Int32(MSG_DONTWAIT)) : read(fd, buffer + end, capacity - end)
      if n > 0 {
        end += n
        return true
      }
      if n < 0 && (errno == EINTR || (busyPoll && (errno == EAGAIN || errno == EWOULDBLOCK))) { continue }
      closed = true
      return false
    }
  }
}

extension UnsafeBufferPointer<UInt8> {
  /// Whether an answer line is a success: it starts with `{"ok":true` (what every espd success
  /// answer starts with; no JSON parsing on the timed path).
  @inline(__always)
  var isOKAnswer: Bool {
    guard count >= 10 else { return false }
    let b = baseAddress!
    // {"ok":true
    return b[0] == 0x7B && b[1] == 0x22 && b[2] == 0x6F && b[3] == 0x6B && b[4] == 0x22 && b[5] == 0x3A
      && b[6] == 0x74 && b[7] == 0x72 && b[8] == 0x75 && b[9] == 0x65
  }

  /// The line as text for a report: at most `limit` bytes, control characters as spaces.
  func reportText(limit: Int = 300) -> String {
    String(decoding: prefix(limit).map { $0 < 0x20 ? 0x20 : $0 }, as: UTF8.self)
  }
}
