// SPDX-License-Identifier: Apache-2.0
// The netlink socket's system calls (open, options, send, receive): the pointer and errno code.
import CLinux

#if canImport(Glibc)
  import Glibc
#endif

/// `struct sockaddr_nl` (linux/netlink.h; Glibc does not import it): 12 bytes, port 0 is the kernel.
struct NetlinkSocketAddress {
  var family = UInt16(AF_NETLINK)
  var pad: UInt16 = 0
  var portID: UInt32 = 0
  var groups: UInt32 = 0
}

extension Netlink {
  /// The receive buffer: more than the largest dump datagram the kernel builds (32 KiB).
  static let receiveBufferSize = 64 << 10

  /// Runs `body` until it does not fail with EINTR; another failure throws a ``NetlinkError``
  /// naming `operation`. EBADF and EFAULT are programmer errors (STYLE.md §3).
  static func call<T: BinaryInteger>(_ operation: () -> String, _ body: () -> T) throws(NetlinkError) -> T {
    while true {
      let r = body()
      if r >= 0 { return r }
      let e = errno
      if e == EINTR { continue }
      precondition(e != EBADF && e != EFAULT, "netlink: bad descriptor or buffer")
      throw NetlinkError(operation: operation(), errno: e)
    }
  }

  /// Opens a NETLINK_ROUTE socket in the calling thread's network namespace.
  static func openSocket() throws(NetlinkError) -> OwnedFD {
    let type = Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    let fd: OwnedFD
    do throws(SystemError) {
      fd = try Sys.socket(AF_NETLINK, type, NLM.protocolRoute, "open a NETLINK_ROUTE socket")
    } catch {
      throw NetlinkError(operation: error.operation, errno: error.errno)
    }
    // Best effort (both exist since Linux 4.2/4.12): errors then carry the kernel's own message
    // and do not echo our whole request back; without them they are plain errnos.
    try? Sys.setOption(fd.raw, NLM.solNetlink, NLM.extAck, 1, "NETLINK_EXT_ACK")
    try? Sys.setOption(fd.raw, NLM.solNetlink, NLM.capAck, 1, "NETLINK_CAP_ACK")
    // The kernel always answers a request with NLM_F_ACK; the timeout only keeps a lost answer
    // from hanging espd's start-up or exit (best effort: a kernel without it answers anyway).
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    try? Sys.setOption(fd.raw, SOL_SOCKET, SO_RCVTIMEO, &timeout, "SO_RCVTIMEO")
    return fd
  }

  /// Sends one request to the kernel (port 0).
  func send(_ message: [UInt8], _ operation: () -> String) throws(NetlinkError) {
    var kernel = NetlinkSocketAddress()
    var request = message
    let sent = try Self.call(operation) {
      request.withUnsafeMutableBytes { bytes in
        withUnsafeMutablePointer(to: &kernel) { Self.withMessageHeader(bytes, $0) { Sys.sendMessage(fd, $0, 0) } }
      }
    }
    if sent != message.count { throw NetlinkError(operation: operation(), errno: EMSGSIZE) }
  }

  /// Receives one datagram from the kernel; datagrams from other ports are skipped.
  /// - Throws: ETIMEDOUT if nothing arrives within the socket's timeout; EMSGSIZE if truncated.
  func receive(_ operation: () -> String) throws(NetlinkError) -> [UInt8] {
    while true {
      var from = NetlinkSocketAddress()
      let n: Int
      do throws(NetlinkError) {
        n = try Self.call(operation) {
          receiveBuffer.withUnsafeMutableBytes { bytes in
            withUnsafeMutablePointer(to: &from) {
              // MSG_TRUNC: the return value is the datagram's real length, so truncation shows.
              Self.withMessageHeader(bytes, $0) { Sys.receiveMessage(fd, $0, Int32(MSG_TRUNC)) }
            }
          }
        }
      } catch  where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
        throw NetlinkError(operation: operation(), errno: ETIMEDOUT)
      }
      if n > receiveBuffer.count { throw NetlinkError(operation: operation(), errno: EMSGSIZE) }
      if from.portID != 0 { continue }
      return Array(receiveBuffer[0..<n])
    }
  }

  /// Runs `body` with a `msghdr` for one buffer and a netlink address.
  ///
  /// sendmsg/recvmsg rather than sendto/recvfrom: `msghdr` takes the address as a plain pointer,
  /// the same on every libc whatever its feature macros (sendto takes a transparent union with _GNU_SOURCE).
  private static func withMessageHeader<R>(
    _ bytes: UnsafeMutableRawBufferPointer, _ address: UnsafeMutablePointer<NetlinkSocketAddress>,
    _ body: (UnsafeMutablePointer<msghdr>) -> R
  ) -> R {
    var vector = iovec(iov_base: bytes.baseAddress, iov_len: bytes.count)
    return withUnsafeMutablePointer(to: &vector) { vector in
      var header = msghdr()
      header.msg_name = UnsafeMutableRawPointer(address)
      header.msg_namelen = socklen_t(MemoryLayout<NetlinkSocketAddress>.size)
      header.msg_iov = vector
      header.msg_iovlen = 1
      return body(&header)
    }
  }
}
