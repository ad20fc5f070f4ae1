// SPDX-License-Identifier: Apache-2.0
// The io_uring loop's inbound side: multishot receives parsed into a batch (a UDP GRO receive split
// into its datagrams), decapsulated, and written to the TUN one packet each, or, with a virtio-net
// header, one GSO write per run of TCP segments or same-size UDP datagrams of a flow.
import CLinux
import CURing
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

extension URingLoop {
  /// Parses one multishot recvmsg buffer (io_uring_recvmsg_out, name, control, payload) into the batch.
  func collectDatagram(socket: Int, buffer id: UInt16, length: Int) {
    let buffers = receiveBuffers[socket]
    let base = buffers.buffer(id)
    guard let out = io_uring_recvmsg_validate(base, Int32(length), receiveHeaders + socket),
      out.pointee.flags & UInt32(MSG_TRUNC) == 0,
      let payload = io_uring_recvmsg_payload(out, receiveHeaders + socket)
    else {
      core.pipeline.counters.count(.dropped(.malformed))
      buffers.give(id)
      return
    }
    let payloadLength = Int(io_uring_recvmsg_payload_length(out, Int32(length), receiveHeaders + socket))
    let name = UnsafeRawPointer(out + 1)
    let control = name + Int(receiveHeaders[socket].msg_namelen)
    let s = core.sockets[socket]
    let remote = SocketAddress.read(name) ?? Endpoint(address: .v4(0), port: 0)
    let local =
      SocketAddress.packetInfoDestination(control: control, length: Int(out.pointee.controllen)) ?? s.local.address
    let address = DatagramAddress(remote: remote, local: Endpoint(address: local, port: s.local.port))
    if udpGRO, let size = SocketAddress.groSegmentSize(control: control, length: Int(out.pointee.controllen)),
      size > 0, size < payloadLength
    {
      // Several datagrams coalesced (UDP GRO): each into a slot of its own, the buffer back at once.
      splitCoalesced(UnsafeMutableRawPointer(payload), length: payloadLength, segment: size, address: address)
      buffers.give(id)
      return
    }
    let i = inboundCount
    inbound.packets[i] = PacketBuffer(base: base, capacity: buffers.size, start: payload - base, count: payloadLength)
    inbound.addresses[i] = address
    inbound.origin[i] = UInt32(socket) << 16 | UInt32(id)
    inboundCount += 1
  }

  /// The datagrams of one GRO receive (`segment` bytes each, the last may be shorter), copied into
  /// inbound arena slots with the usual headroom.
  func splitCoalesced(_ p: UnsafeMutableRawPointer, length: Int, segment: Int, address: DatagramAddress) {
    let room = inboundArena.size - DataplaneConstants.headroom
    var offset = 0
    core.udpGROReceives &+= 1
    while offset < length {
      let n = min(segment, length - offset)
      if inboundCount == batch { flushInbound() }
      guard n <= room, let a = inboundArena.take() else {
        core.offloadDropped &+= 1
        offset += n
        continue
      }
      let slot = inboundArena.slot(a)
      (slot + DataplaneConstants.headroom).copyMemory(from: p + offset, byteCount: n)
      let i = inboundCount
      inbound.packets[i] = PacketBuffer(
        base: slot, capacity: inboundArena.size, start: DataplaneConstants.headroom, count: n)
      inbound.addresses[i] = address
      inbound.origin[i] = URingLoop.arenaBit | a
      inboundCount += 1
      core.udpGRODatagrams &+= 1
      offset += n
    }
  }

  /// Gives an inbound packet's buffer back: an arena slot, or a provided buffer to its ring.
  func releaseInbound(_ o: UInt32) {
    if o & URingLoop.arenaBit != 0 {
      inboundArena.give(o & ~URingLoop.arenaBit)
    } else {
      receiveBuffers[Int(o >> 16)].give(UInt16(truncatingIfNeeded: o))
    }
  }

  /// The inbound batch: decapsulate, queue TUN writes (the buffers return when the write
  /// completes). With a virtio-net header, TCP segments of one flow go as one GSO write.
  func flushInbound() {
    core.applyChanges()  // before the batch: a packet collected after a change must meet it
    let n = steer(inbound, count: inboundCount, direction: .inbound)
    inboundCount = 0
    guard n > 0 else { return }
    core.batches &+= 1
    core.batchedPackets &+= UInt64(n)
    let (packets, addresses, verdicts) = (inbound.packets, inbound.addresses, inbound.verdicts)
    core.pipeline.batchTime = LoopCore.now()  // one clock read per batch: the SAs' last use
    core.pipeline.inbound(packets, addresses: addresses, verdicts: verdicts, count: n)
    coalescer.reset()
    for i in 0..<n {
      let o = inbound.origin[i]
      if case .decapsulated = verdicts[i] {
        if vnetLength > 0 {
          coalescer.add(i, in: packets)
          continue
        }
        if let sqe = uring.sqe() {
          io_uring_prep_write(sqe, core.tunFD, packets[i].data, UInt32(packets[i].count), 0)
          io_uring_sqe_set_data64(sqe, userData(.tunWrite, o))
          continue
        }
        core.tunWriteDropped &+= 1
      }
      if case .ike = verdicts[i] {
        core.punt?.punt(packets[i].bytes, from: addresses[i].remote, to: addresses[i].local)
      }
      releaseInbound(o)
    }
    for g in coalescer.groups { writeGroup(g) }
  }

  /// One TUN writev: the virtio-net header, the head packet, the payloads of the rest of its group.
  func writeGroup(_ g: TCPCoalescer.Group) {
    let packets = inbound.packets
    guard let d = tunWrites.take(), let sqe = uring.sqe() else {
      var i = g.head
      while i >= 0 {
        core.tunWriteDropped &+= 1
        releaseInbound(inbound.origin[i])
        i = Int(coalescer.next[i])
      }
      return
    }
    let header = tunWrites.controls + d * SocketAddress.controlSpace
    if g.count > 1 {
      var h = VirtioNetHeader()
      TCPCoalescer.finishHead(packets[g.head], g, header: &h)
      h.write(to: header)
      core.tunGROPackets &+= 1
      core.tunGROSegments &+= UInt64(g.count)
    } else {
      VirtioNetHeader.writeNone(to: header)
    }
    tunWrites.append(d, data: header, length: VirtioNetHeader.size, origin: .max)
    var i = g.head
    var first = true
    while i >= 0 {
      let p = packets[i]
      let skip = first ? 0 : g.headerLength
      tunWrites.append(d, data: p.data + skip, length: p.count - skip, origin: inbound.origin[i])
      first = false
      i = Int(coalescer.next[i])
    }
    io_uring_prep_writev(sqe, core.tunFD, tunWrites.iovecs + d * SendPool.maxSegments, UInt32(tunWrites.counts[d]), 0)
    io_uring_sqe_set_data64(sqe, userData(.tunWriteV, UInt32(d)))
  }

  /// A TUN writev completed: count a failure, give every receive buffer back.
  func completeTunWrite(_ d: Int, result: Int32) {
    let count = tunWrites.counts[d]
    if result < 0 { core.tunWriteDropped &+= UInt64(count - 1) }
    for k in 1..<max(1, count) {
      releaseInbound(tunWrites.origins[d * SendPool.maxSegments + k])
    }
    tunWrites.give(d)
  }
}
