// SPDX-License-Identifier: Apache-2.0
// One client connection of the control plane (control socket or metrics): buffered, non-blocking,
// bounded both ways.
import ESP

#if canImport(Glibc)
  import Glibc
#endif

/// A connected client. Reads complete lines (control) or a request head (metrics); queues output
/// and writes what the socket takes. Owned by the control thread.
final class Connection {
  enum Kind { case control, metrics }

  private let owned: OwnedFD
  var fd: Int32 { owned.raw }
  let kind: Kind
  /// When it was accepted (monotonic ns): idle metrics clients are closed.
  let opened: UInt64
  private(set) var input: [UInt8] = []
  private var output: [UInt8] = []
  private var outputOffset = 0
  /// Receives lifetime events.
  var subscribed = false
  /// Close once the output is written (after an error answer, or an HTTP response).
  var closeAfterOutput = false
  /// An error happened (or the client is too slow): close now.
  private(set) var dead = false
  /// The client shut its side down: no more requests will come.
  private(set) var inputClosed = false

  init(fd: consuming OwnedFD, kind: Kind, now: UInt64) {
    owned = fd
    self.kind = kind
    self.opened = now
  }

  deinit {
    wipeInput(input.count)
  }

  /// Whether there is output waiting for the socket to take it.
  var wantsWrite: Bool { outputOffset < output.count }

  /// Refused: the answer is sent and the write side shut; input is read and dropped until the
  /// client closes (or this deadline passes), so that closing never resets the connection under
  /// an answer the client has not read yet.
  private(set) var drainingUntil: UInt64? = nil
  /// A request line was too long: input is dropped up to the next newline, then requests resume.
  var skippingLine = false

  /// Whether the connection should be closed now.
  func finished(now: UInt64) -> Bool {
    if dead { return true }
    if let until = drainingUntil { return inputClosed || now >= until }
    return closeAfterOutput && !wantsWrite
  }

  /// Answers with `line` and then lets the client go (see ``drainingUntil``).
  func refuse(_ line: String, now: UInt64) {
    send(line)
    flush()
    Sys.shutdownWrite(fd)  // a client already gone is closed at the next round anyway
    drainingUntil = now + 2_000_000_000
  }

  /// The control thread's read buffer, shared by every connection (one thread reads them all):
  /// no 64 KiB allocation per read; what a read brought is wiped once copied.
  nonisolated(unsafe) private static let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)

  /// Reads what the socket has (at most `limit` bytes buffered).
  /// - Returns: the bytes read now.
  @discardableResult
  func readAvailable(limit: Int) -> Int {
    let chunk = Connection.chunk
    let before = input.count
    while input.count < limit {
      let n = Sys.read(fd, chunk.baseAddress, min(chunk.count, limit - input.count))
      if n > 0 {
        input.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
        chunk.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: n)  // request lines carry keys
        continue
      }
      if n == 0 {
        inputClosed = true  // answer what was asked, then close
        break
      }
      let e = errno
      if e == EINTR { continue }
      if e != EAGAIN && e != EWOULDBLOCK { dead = true }
      break
    }
    return input.count - before
  }

  /// The next complete line, without its newline (and a trailing CR), or nil.
  func nextLine() -> [UInt8]? {
    if drainingUntil != nil {
      discardInput()
      return nil
    }
    if skippingLine {
      guard let nl = input.firstIndex(of: 10) else {
        discardInput()
        return nil
      }
      wipeInput(nl + 1)
      input.removeFirst(nl + 1)
      skippingLine = false
    }
    // Pipelined requests: lines are taken from `consumed` on, and the buffer is compacted once,
    // when no complete line is left (not once per line: a deep pipeline stays linear).
    guard let nl = input[consumed...].firstIndex(of: 10) else {
      if consumed > 0 {
        input.removeFirst(consumed)
        consumed = 0
      }
      return nil
    }
    var line = Array(input[consumed..<nl])
    if line.last == 13 { line.removeLast() }
    input.withUnsafeMutableBytes { b in
      for i in consumed...nl { b[i] = 0 }
    }
    consumed = nl + 1
    return line
  }

  /// Bytes of `input` already taken as lines (wiped; dropped at the next compaction).
  private var consumed = 0

  /// Drops (and wipes) everything read.
  func discardInput() {
    wipeInput(input.count)
    input.removeAll()
    consumed = 0
  }

  /// Request lines carry key material: overwrite what was read before letting go of it.
  private func wipeInput(_ count: Int) {
    input.withUnsafeMutableBytes { b in
      for i in 0..<min(count, b.count) { b[i] = 0 }
    }
  }

  /// Queues a line (a newline is added). A client that lets more than `limit` bytes pile up is closed.
  func send(_ line: String, limit: Int = ControlLimits.maxPendingOutput) {
    guard !dead else { return }
    // What is still unsent from before: one large answer (`list` of a million tunnels) is fine,
    // a client that stops reading while answers and events pile up is not.
    if output.count - outputOffset > limit {
      dead = true
      return
    }
    output += line.utf8
    output.append(10)
  }

  /// Queues raw bytes (HTTP).
  func sendRaw(_ text: String) {
    output += text.utf8
  }

  /// Writes what the socket takes now.
  func flush() {
    while outputOffset < output.count {
      let n = output.withUnsafeBytes { Sys.write(fd, $0.baseAddress! + outputOffset, output.count - outputOffset) }
      if n > 0 {
        outputOffset += n
        continue
      }
      if n < 0 && errno == EINTR { continue }
      if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
      dead = true
      return
    }
    if outputOffset == output.count {
      output.removeAll(keepingCapacity: output.capacity <= 65536)
      outputOffset = 0
    }
  }
}
