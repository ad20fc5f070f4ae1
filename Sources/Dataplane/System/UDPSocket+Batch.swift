// SPDX-License-Identifier: Apache-2.0
// A UDP socket as a loop's datagram socket: batches through recvmmsg/sendmmsg, each datagram's
// destination from its pktinfo, and its source set by pktinfo when the socket is a wildcard.
import CLinux
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// The message headers, iovecs, names and control buffers of one batch, reused (allocation-free
/// after the first batch of each size).
final class MMsgScratch {
  let capacity: Int
  let messages: UnsafeMutablePointer<CLinux_mmsghdr>
  let iovecs: UnsafeMutablePointer<iovec>
  let names: UnsafeMutablePointer<SocketAddressStorage>
  let controls: UnsafeMutableRawPointer

  init(capacity: Int) {
    self.capacity = capacity
    messages = .allocate(capacity: capacity)
    iovecs = .allocate(capacity: capacity)
    names = .allocate(capacity: capacity)
    controls = .allocate(byteCount: capacity * SocketAddress.controlSpace, alignment: 16)
    messages.initialize(repeating: CLinux_mmsghdr(), count: capacity)
    iovecs.initialize(repeating: iovec(), count: capacity)
    names.initialize(repeating: SocketAddressStorage(), count: capacity)
  }

  deinit {
    messages.deallocate()
    iovecs.deallocate()
    names.deallocate()
    controls.deallocate()
  }

  @inline(__always) func control(_ i: Int) -> UnsafeMutableRawPointer { controls + i * SocketAddress.controlSpace }
}

extension UDPSocket: DatagramSocket {
  /// This socket's scratch for `count` messages (a larger one replaces it once, when needed).
  @inline(__always) func scratch(_ count: Int) -> MMsgScratch {
    if let s = batchScratch, s.capacity >= count { return s }
    let s = MMsgScratch(capacity: max(count, DataplaneConstants.batchSize))
    batchScratch = s
    return s
  }

  public func receive(into batch: DatagramBatch, max: Int) -> Int {
    let m = scratch(max)
    let room = batch.slotSize - batch.headroom
    for i in 0..<max {
      m.iovecs[i] = iovec(iov_base: batch.slot(i) + batch.headroom, iov_len: room)
      m.messages[i].msg_hdr = msghdr(
        msg_name: UnsafeMutableRawPointer(m.names + i),
        msg_namelen: socklen_t(MemoryLayout<SocketAddressStorage>.size), msg_iov: m.iovecs + i, msg_iovlen: 1,
        msg_control: m.control(i), msg_controllen: SocketAddress.controlSpace, msg_flags: 0)
    }
    let r = Sys.receiveMessages(fd, m.messages, max)
    guard r > 0 else { return 0 }
    let n = Int(r)
    for i in 0..<n {
      let remote = SocketAddress.read(UnsafeRawPointer(m.names + i)) ?? Endpoint(address: .v4(0), port: 0)
      let to =
        SocketAddress.packetInfoDestination(control: m.control(i), length: Int(m.messages[i].msg_hdr.msg_controllen))
        ?? local.address
      batch.addresses[i] = DatagramAddress(remote: remote, local: Endpoint(address: to, port: local.port))
      batch.packets[i] = PacketBuffer(
        base: batch.slot(i), capacity: batch.slotSize, start: batch.headroom, count: Int(m.messages[i].msg_len))
    }
    return n
  }

  public func send(_ batch: DatagramBatch, indices: [Int]) -> Int {
    let m = scratch(indices.count)
    let wildcard = local.address.isUnspecifiedAddress
    for (k, i) in indices.enumerated() {
      let name = UnsafeMutableRawPointer(m.names + k)
      let nameLength = SocketAddress.write(batch.addresses[i].remote, to: name)
      let controlLength =
        wildcard ? SocketAddress.writePacketInfo(source: batch.addresses[i].local.address, to: m.control(k)) : 0
      m.iovecs[k] = iovec(iov_base: batch.packets[i].data, iov_len: batch.packets[i].count)
      m.messages[k].msg_hdr = msghdr(
        msg_name: name, msg_namelen: nameLength, msg_iov: m.iovecs + k, msg_iovlen: 1,
        msg_control: controlLength > 0 ? m.control(k) : nil, msg_controllen: controlLength, msg_flags: 0)
      m.messages[k].msg_len = 0
    }
    var sent = 0
    while sent < indices.count {
      let r = Sys.sendMessages(fd, m.messages + sent, indices.count - sent)
      if r < 0 {
        if errno == EINTR { continue }
        return sent  // EAGAIN/ENOBUFS: the kernel is full; the rest is dropped
      }
      sent += Int(r)
    }
    return sent
  }
}
