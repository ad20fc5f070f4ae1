import CLinux
import ESP
// SPDX-License-Identifier: Apache-2.0
// The fallback loop (`--io mmsg`): poll, then batches through recvmmsg/sendmmsg and TUN read/write.
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// A loop over poll(2) with recvmmsg/sendmmsg batches. Owns its buffers; runs on one thread.
public final class MMsgLoop {
  let core: LoopCore
  let signals: SignalEvents
  let batch: Int
  let slotSize: Int
  let slab: UnsafeMutableRawPointer
  let packets: UnsafeMutablePointer<PacketBuffer>
  let addresses: UnsafeMutablePointer<DatagramAddress>
  let verdicts: UnsafeMutablePointer<Verdict>
  let messages: UnsafeMutablePointer<CLinux_mmsghdr>
  let iovecs: UnsafeMutablePointer<iovec>
  let names: UnsafeMutablePointer<SocketAddressStorage>
  let controls: UnsafeMutableRawPointer
  /// Indices of the packets to send, per socket.
  @exclusivity(unchecked) var sendIndices: [[Int]]

  public init(core: LoopCore, signals: SignalEvents, batch: Int = DataplaneConstants.batchSize) {
    self.core = core
    self.signals = signals
    self.batch = batch
    slotSize = core.slotSize
    slab = PacketMemory.allocate(batch * slotSize)
    packets = .allocate(capacity: batch)
    addresses = .allocate(capacity: batch)
    verdicts = .allocate(capacity: batch)
    messages = .allocate(capacity: batch)
    iovecs = .allocate(capacity: batch)
    names = .allocate(capacity: batch)
    controls = .allocate(byteCount: batch * SocketAddress.controlSpace, alignment: 16)
    let zero = Endpoint(address: .v4(0), port: 0)
    addresses.initialize(repeating: DatagramAddress(remote: zero, local: zero), count: batch)
    verdicts.initialize(repeating: .passed, count: batch)
    packets.initialize(repeating: PacketBuffer(base: slab, capacity: slotSize, start: 0, count: 0), count: batch)
    messages.initialize(repeating: CLinux_mmsghdr(), count: batch)
    iovecs.initialize(repeating: iovec(), count: batch)
    names.initialize(repeating: SocketAddressStorage(), count: batch)
    sendIndices = Array(repeating: [], count: core.sockets.count)
    for i in 0..<sendIndices.count { sendIndices[i].reserveCapacity(batch) }
  }

  deinit {
    slab.deallocate()
    packets.deallocate()
    addresses.deallocate()
    verdicts.deallocate()
    messages.deallocate()
    iovecs.deallocate()
    names.deallocate()
    controls.deallocate()
  }

  /// Runs until SIGINT or SIGTERM.
  public func run() {
    var fds = [
      pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0),
      pollfd(fd: core.tunFD, events: Int16(POLLIN), revents: 0),
    ]
    for s in core.sockets { fds.append(pollfd(fd: s.fd, events: Int16(POLLIN), revents: 0)) }
    let mailboxSlot = fds.count
    if let m = core.mailbox { fds.append(pollfd(fd: m.loopFD, events: Int16(POLLIN), revents: 0)) }
    let puntSlot = fds.count
    if let p = core.punt { fds.append(pollfd(fd: p.pollFD, events: Int16(POLLIN), revents: 0)) }
    defer {
      core.publish()
      core.mailbox?.loopExited()
    }
    while !core.shouldStop {
      let since = LoopCore.now()
      let sinceCPU = LoopCore.threadCPU()
      core.serviceRequests()
      let now = LoopCore.now()
      core.tick(now: now)
      let timeout = core.sweeping ? 0 : Int32(max(1, min(1000, (core.nextTick &- now) / 1_000_000)))
      core.noteStall(cpu: LoopCore.threadCPU() &- sinceCPU, wall: LoopCore.now() &- since)
      let n = Sys.poll(&fds, timeout: timeout)
      if n < 0 && errno != EINTR {
        core.failure = "poll failed: \(String(cString: strerror(errno))) (errno \(errno))"
        break
      }
      if fds[0].revents != 0 { signals.drain(into: core) }
      if fds[1].revents != 0 { readTUN() }
      for (i, s) in core.sockets.enumerated() where fds[2 + i].revents != 0 { receive(from: s) }
      if let m = core.mailbox, fds[mailboxSlot].revents != 0 {
        Mailbox.drain(m.loopFD)
        core.mailboxSignalled = true
      }
      if core.punt != nil, fds[puntSlot].revents != 0 { core.servicePunt() }
    }
  }

  func slot(_ i: Int) -> UnsafeMutableRawPointer { slab + i * slotSize }

  /// Reads up to a batch of packets from the TUN, encapsulates them, sends them per socket.
  func readTUN() {
    var n = 0
    let vnet = core.tun.vnetHeader ? VirtioNetHeader.size : 0
    let room = slotSize - DataplaneConstants.headroom - DataplaneConstants.tailroom + vnet
    while n < batch {
      let r = Sys.read(core.tunFD, slot(n) + DataplaneConstants.headroom - vnet, room)
      if r <= vnet { break }
      if vnet > 0 {
        // Offloads are off for this loop; a packet left over from before is completed or dropped.
        let h = VirtioNetHeader(slot(n) + DataplaneConstants.headroom - vnet)
        let data = slot(n) + DataplaneConstants.headroom
        if h.gsoKind != VirtioNetHeader.gsoNone
          || (h.flags & VirtioNetHeader.needsChecksum != 0
            && !Segmentation.completeChecksum(
              data, count: r - vnet, start: Int(h.checksumStart), offset: Int(h.checksumOffset)))
        {
          core.pipeline.counters.count(.dropped(.malformed))
          continue
        }
      }
      packets[n] = PacketBuffer(base: slot(n), capacity: slotSize, start: DataplaneConstants.headroom, count: r - vnet)
      n += 1
    }
    guard n > 0 else { return }
    core.batches &+= 1
    core.batchedPackets &+= UInt64(n)
    core.applyChanges()  // before the batch: a packet collected after a change must meet it
    let now = LoopCore.now()
    core.pipeline.batchTime = now
    core.pipeline.outbound(packets, addresses: addresses, verdicts: verdicts, count: n)
    for i in 0..<sendIndices.count { sendIndices[i].removeAll(keepingCapacity: true) }
    for i in 0..<n {
      guard case .encapsulated(let t) = verdicts[i] else { continue }
      guard let s = core.socketIndex(for: addresses[i].local) else {
        core.udpSendDropped &+= 1
        continue
      }
      sendIndices[s].append(i)
      core.pipeline.table.slots[Int(t)]?.lastSent = now
    }
    for (s, indices) in sendIndices.enumerated() where !indices.isEmpty { send(indices, on: core.sockets[s]) }
  }

  /// sendmmsg of the given packets on one socket, with pktinfo for the source address.
  func send(_ indices: [Int], on socket: UDPSocket) {
    let wildcard = socket.local.address.isUnspecifiedAddress
    for (k, i) in indices.enumerated() {
      let name = UnsafeMutableRawPointer(names + k)
      let nameLength = SocketAddress.write(addresses[i].remote, to: name)
      let control = controls + k * SocketAddress.controlSpace
      let controlLength = wildcard ? SocketAddress.writePacketInfo(source: addresses[i].local.address, to: control) : 0
      iovecs[k] = iovec(iov_base: packets[i].data, iov_len: packets[i].count)
      messages[k].msg_hdr = msghdr(
        msg_name: name, msg_namelen: nameLength, msg_iov: iovecs + k, msg_iovlen: 1,
        msg_control: controlLength > 0 ? control : nil, msg_controllen: controlLength, msg_flags: 0)
      messages[k].msg_len = 0
    }
    var sent = 0
    while sent < indices.count {
      let r = Sys.sendMessages(socket.fd, messages + sent, indices.count - sent)
      if r < 0 {
        if errno == EINTR { continue }
        core.udpSendDropped &+= UInt64(indices.count - sent)  // EAGAIN/ENOBUFS: the kernel is full
        return
      }
      sent += Int(r)
    }
  }

  /// recvmmsg a batch from one socket, decapsulate, write to the TUN, punt IKE.
  func receive(from socket: UDPSocket) {
    let room = slotSize - DataplaneConstants.headroom
    for i in 0..<batch {
      iovecs[i] = iovec(iov_base: slot(i) + DataplaneConstants.headroom, iov_len: room)
      messages[i].msg_hdr = msghdr(
        msg_name: UnsafeMutableRawPointer(names + i), msg_namelen: socklen_t(MemoryLayout<SocketAddressStorage>.size),
        msg_iov: iovecs + i, msg_iovlen: 1, msg_control: controls + i * SocketAddress.controlSpace,
        msg_controllen: SocketAddress.controlSpace, msg_flags: 0)
    }
    let r = Sys.receiveMessages(socket.fd, messages, batch)
    guard r > 0 else { return }
    let n = Int(r)
    core.batches &+= 1
    core.batchedPackets &+= UInt64(n)
    for i in 0..<n {
      let remote = SocketAddress.read(UnsafeRawPointer(names + i)) ?? Endpoint(address: .v4(0), port: 0)
      let to =
        SocketAddress.packetInfoDestination(
          control: controls + i * SocketAddress.controlSpace, length: Int(messages[i].msg_hdr.msg_controllen))
        ?? socket.local.address
      addresses[i] = DatagramAddress(remote: remote, local: Endpoint(address: to, port: socket.local.port))
      packets[i] = PacketBuffer(
        base: slot(i), capacity: slotSize, start: DataplaneConstants.headroom, count: Int(messages[i].msg_len))
    }
    core.applyChanges()  // before the batch: a packet collected after a change must meet it
    core.pipeline.batchTime = LoopCore.now()  // one clock read per batch: the SAs' last use
    core.pipeline.inbound(packets, addresses: addresses, verdicts: verdicts, count: n)
    for i in 0..<n {
      switch verdicts[i] {
      case .decapsulated:
        let vnet = core.tun.vnetHeader ? VirtioNetHeader.size : 0
        let data = packets[i].data - vnet
        if vnet > 0 { VirtioNetHeader.writeNone(to: data) }
        if Sys.write(core.tunFD, data, packets[i].count + vnet) < 0 { core.tunWriteDropped &+= 1 }
      case .ike:
        core.punt?.punt(packets[i].bytes, from: addresses[i].remote, to: addresses[i].local)
      default:
        break
      }
    }
  }
}
