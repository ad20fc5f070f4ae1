// SPDX-License-Identifier: Apache-2.0
// The io_uring loop's outbound side: TUN packets in (GSO packets cut into segments, partial
// checksums completed), sealed as a batch, and sent as runs of same-size datagrams per peer: one
// sendmsg with UDP_SEGMENT for each run when UDP GSO is on, one per datagram otherwise.
import CLinux
import CURing
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

extension URingLoop {
  /// Origin codes of outbound packets: a TUN slot index, or an arena slot with this bit set.
  static let arenaBit: UInt32 = 0x8000_0000

  /// A packet read into TUN slot `index` (`length` bytes after the virtio-net header, if any).
  func collectTunPacket(slot index: Int, length: Int) {
    let base = slot(index)
    let data = base + DataplaneConstants.headroom
    guard vnetLength > 0 else {
      appendOutbound(
        PacketBuffer(base: base, capacity: tunSlotSize, start: DataplaneConstants.headroom, count: length),
        origin: UInt32(index))
      return
    }
    let header = VirtioNetHeader(data - vnetLength)
    if header.gsoKind == VirtioNetHeader.gsoNone {
      if header.flags & VirtioNetHeader.needsChecksum != 0,
        !Segmentation.completeChecksum(
          data, count: length, start: Int(header.checksumStart), offset: Int(header.checksumOffset))
      {
        core.pipeline.counters.count(.dropped(.malformed))
        postTunRead(index)
        return
      }
      appendOutbound(
        PacketBuffer(base: base, capacity: tunSlotSize, start: DataplaneConstants.headroom, count: length),
        origin: UInt32(index))
      return
    }
    // A GSO packet: cut into segments in arena slots; the TUN slot is free again at once.
    defer { postTunRead(index) }
    let room = arena.size - DataplaneConstants.headroom - DataplaneConstants.tailroom
    guard let plan = Segmentation.plan(data, count: length, header: header) else {
      core.pipeline.counters.count(.dropped(.malformed))
      return
    }
    guard plan.maxSegmentLength <= room, plan.segments <= outboundCapacity else {
      core.pipeline.counters.count(.dropped(.tooBig))
      return
    }
    if outboundCount + plan.segments > outboundCapacity { flushOutbound() }
    core.tunGSOPackets &+= 1
    for i in 0..<plan.segments {
      guard let a = arena.take() else {
        core.offloadDropped &+= UInt64(plan.segments - i)  // every segment slot is in flight
        return
      }
      let slotBase = arena.slot(a)
      let n = Segmentation.writeSegment(
        i, of: data, count: length, plan: plan, to: slotBase + DataplaneConstants.headroom)
      appendOutbound(
        PacketBuffer(base: slotBase, capacity: arena.size, start: DataplaneConstants.headroom, count: n),
        origin: URingLoop.arenaBit | a)
    }
    core.tunGSOSegments &+= UInt64(plan.segments)
  }

  func appendOutbound(_ p: PacketBuffer, origin: UInt32) {
    outbound.packets[outboundCount] = p
    outbound.origin[outboundCount] = origin
    outboundCount += 1
  }

  /// Gives a packet's buffer back: an arena slot to the arena, a TUN slot to a new read.
  func release(_ origin: UInt32) {
    if origin & URingLoop.arenaBit != 0 { arena.give(origin & ~URingLoop.arenaBit) } else { postTunRead(Int(origin)) }
  }

  /// The outbound batch: encapsulate, then one sendmsg per run of datagrams that share socket,
  /// peer, source and size (the last of a run may be shorter): UDP GSO. Without GSO, one each.
  func flushOutbound() {
    core.applyChanges()  // before the batch: a packet collected after a change must meet it
    let n = steer(outbound, count: outboundCount, direction: .outbound)
    outboundCount = 0
    guard n > 0 else { return }
    core.batches &+= 1
    core.batchedPackets &+= UInt64(n)
    let (packets, addresses, verdicts) = (outbound.packets, outbound.addresses, outbound.verdicts)
    let now = LoopCore.now()
    core.pipeline.batchTime = now
    core.pipeline.outbound(packets, addresses: addresses, verdicts: verdicts, count: n)
    var run: (descriptor: Int, socket: Int, address: DatagramAddress, size: Int, limit: Int, closed: Bool)? = nil
    for i in 0..<n {
      let origin = outbound.origin[i]
      guard case .encapsulated(let t) = verdicts[i], let s = core.socketIndex(for: addresses[i].local) else {
        if case .encapsulated = verdicts[i] { core.udpSendDropped &+= 1 }
        release(origin)
        continue
      }
      core.pipeline.table.slots[Int(t)]?.lastSent = now
      let length = packets[i].count
      if var r = run, udpGSO, !r.closed, r.socket == s, sends.counts[r.descriptor] < r.limit, length <= r.size,
        r.size <= gsoSizeLimit, addresses[i] == r.address
      {
        sends.append(r.descriptor, data: packets[i].data, length: length, origin: origin)
        if length < r.size { r.closed = true }  // a shorter datagram ends the run
        run = r
        continue
      }
      if let r = run { submit(r.descriptor, socket: r.socket, address: r.address, size: r.size) }
      run = nil
      guard let d = sends.take() else {
        core.udpSendDropped &+= 1
        release(origin)
        continue
      }
      sends.append(d, data: packets[i].data, length: length, origin: origin)
      // The whole run must fit one UDP datagram's length field (the kernel's limit for GSO).
      let limit = max(1, min(SendPool.maxSegments, 65_000 / max(1, length)))
      run = (d, s, addresses[i], length, limit, false)
    }
    if let r = run { submit(r.descriptor, socket: r.socket, address: r.address, size: r.size) }
  }

  /// Queues descriptor `d` as one sendmsg.
  func submit(_ d: Int, socket s: Int, address: DatagramAddress, size: Int) {
    let socket = core.sockets[s]
    let source: IPAddress? = socket.local.address.isUnspecifiedAddress ? address.local.address : nil
    sends.destinations[d] = (s, address.remote, source)
    let header = sends.prepare(d, remote: address.remote, source: source, segmentSize: size)
    guard let sqe = uring.sqe() else {
      completeSend(d, result: -ENOBUFS)
      return
    }
    if sends.counts[d] > 1 { core.udpGSOSends &+= 1 }
    io_uring_prep_sendmsg(sqe, socket.fd, header, 0)
    io_uring_sqe_set_data64(sqe, userData(.send, UInt32(d)))
  }

  /// A sendmsg completed: count failures, release every buffer it carried. When the kernel refuses
  /// a GSO send, its datagrams go again, one sendmsg each; EMSGSIZE or EINVAL (datagrams larger
  /// than the route's MTU: they need IP fragments) stops GSO for datagrams of that size and
  /// larger, EIO or EOPNOTSUPP (no UDP GSO here) stops it altogether.
  func completeSend(_ d: Int, result: Int32) {
    let count = sends.counts[d]
    if result < 0 && count > 1 && (result == -EIO || result == -EINVAL || result == -EOPNOTSUPP || result == -EMSGSIZE)
    {
      let size = sends.iovecs[d * SendPool.maxSegments].iov_len
      if result == -EMSGSIZE || result == -EINVAL {
        gsoSizeLimit = min(gsoSizeLimit, size - 1)  // larger than the route allows: no GSO at this size
      } else {
        udpGSO = false
      }
      core.udpGSODisabled = true
      let (socket, remote, source) = sends.destinations[d]
      for k in 0..<count {
        let v = sends.iovecs[d * SendPool.maxSegments + k]
        let origin = sends.origins[d * SendPool.maxSegments + k]
        guard let e = sends.take(), let base = v.iov_base else {
          core.udpSendDropped &+= 1
          release(origin)
          continue
        }
        sends.append(e, data: base, length: v.iov_len, origin: origin)
        sends.destinations[e] = (socket, remote, source)
        let header = sends.prepare(e, remote: remote, source: source, segmentSize: v.iov_len)
        guard let sqe = uring.sqe() else {
          completeSend(e, result: -ENOBUFS)
          continue
        }
        io_uring_prep_sendmsg(sqe, core.sockets[socket].fd, header, 0)
        io_uring_sqe_set_data64(sqe, userData(.send, UInt32(e)))
      }
      sends.give(d)
      return
    }
    if result < 0 { core.udpSendDropped &+= UInt64(count) }
    for k in 0..<count { release(sends.origins[d * SendPool.maxSegments + k]) }
    sends.give(d)
  }
}
