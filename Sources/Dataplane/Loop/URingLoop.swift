// SPDX-License-Identifier: Apache-2.0
// The io_uring loop: multishot recvmsg into provided buffers on every listen socket, a set of
// outstanding TUN reads, batched TUN writes and UDP sends, one io_uring_enter per round.
import CLinux
import CURing
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// The default loop (`--io uring`). Runs on one thread; owns its ring and buffers.
public final class URingLoop {
  let core: LoopCore
  /// The first worker reads the signals; the others get nil.
  let signals: SignalEvents?
  let uring: URing
  let batch = DataplaneConstants.batchSize
  /// Outstanding TUN reads (more than a few gain nothing; the kernel polls the TUN).
  let tunReads = 64
  let receiveBuffers: [ProvidedBuffers]
  let receiveHeaders: UnsafeMutablePointer<msghdr>
  /// TUN read slots: 2 KiB, or 64 KiB and more when the TUN hands over GSO packets.
  let slab: UnsafeMutableRawPointer
  let tunSlotSize: Int
  /// Bytes of virtio-net header in front of each TUN packet (0 without IFF_VNET_HDR).
  let vnetLength: Int
  /// Slots for the segments of GSO packets (none without TUN offloads).
  let arena: SlotArena
  /// Slots for the datagrams of UDP GRO receives (none without GRO).
  let inboundArena: SlotArena
  /// Whether the listen sockets coalesce datagrams (UDP_GRO): receive buffers are then 64 KiB.
  let udpGRO: Bool
  /// sendmsg descriptors (one per datagram, or per UDP GSO run of up to 64).
  let sends: SendPool
  /// TUN writev descriptors (virtio-net header, then one packet or a coalesced TCP run).
  let tunWrites: SendPool
  /// Groups decapsulated TCP segments into GSO writes (with a virtio-net header only).
  @exclusivity(unchecked) var coalescer: TCPCoalescer
  /// Whether runs of same-size datagrams to one peer go out as one UDP GSO sendmsg.
  @exclusivity(unchecked) var udpGSO: Bool
  /// The largest datagram sent with GSO (lowered when the kernel refuses a size).
  @exclusivity(unchecked) var gsoSizeLimit = Int.max
  /// One batch in each direction, in separate arrays: a round's completions mix both.
  let inbound: BatchArrays
  let outbound: BatchArrays
  let outboundCapacity: Int
  @exclusivity(unchecked) var inboundCount = 0
  @exclusivity(unchecked) var outboundCount = 0
  let signalInfo = UnsafeMutablePointer<signalfd_siginfo>.allocate(capacity: 1)
  let mailboxValue = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
  let handoffValue = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
  /// The value written to another worker's wake eventfd (read by the kernel when the write runs).
  let wakeOne = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
  /// Workers this one published packets for since it last woke them.
  @exclusivity(unchecked) var wakePending: [Bool]
  let completions = UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>.allocate(capacity: 256)

  /// What the ring was set up with, for the log.
  public var setupDescription: String {
    let f = uring.flags == 0 ? "default flags" : "SINGLE_ISSUER|DEFER_TASKRUN"
    return
      "\(f), multishot recvmsg into \(receiveBuffers.first?.count ?? 0) provided buffers per socket, \(tunReads) TUN reads"
      + " of \(tunSlotSize / 1024) KiB, UDP GSO \(udpGSO ? "on" : "off"), UDP GRO \(udpGRO ? "on" : "off")"
  }

  /// Creates the ring and the buffers.
  /// - Parameters:
  ///   - udpGSO: send runs of same-size datagrams to one peer as one sendmsg (UDP_SEGMENT).
  ///   - udpGRO: the sockets have UDP_GRO on (datagrams arrive coalesced, up to 64 KiB).
  public init(core: LoopCore, signals: SignalEvents?, udpGSO: Bool = false, udpGRO: Bool = false) throws(SystemError) {
    self.core = core
    self.signals = signals
    self.udpGSO = udpGSO
    self.udpGRO = udpGRO
    let workers = core.mesh?.count ?? 1
    wakePending = [Bool](repeating: false, count: workers)
    wakeOne.initialize(to: 1)
    // Packets handed over by other workers are copied into arena slots (inbound and outbound).
    inboundArena = SlotArena(count: udpGRO ? 4096 : workers > 1 ? 2048 : 0, size: core.slotSize)
    vnetLength = core.device.vnetHeader ? VirtioNetHeader.size : 0
    let gsoTUN = core.tunOffloads & (TunDevice.offloadTSO4 | TunDevice.offloadTSO6 | TunDevice.offloadUSO4) != 0
    tunSlotSize = gsoTUN ? max(65536 + 4096, core.slotSize) : core.slotSize
    arena = SlotArena(count: gsoTUN || workers > 1 ? 2048 : 0, size: core.slotSize)
    // A descriptor for every datagram that can be in flight (each TUN slot and each arena slot),
    // so that a batch is never dropped for want of one, with UDP GSO off or many peers.
    sends = SendPool(capacity: max(512, tunReads + (gsoTUN || workers > 1 ? 2048 : 0)))
    tunWrites = SendPool(capacity: vnetLength > 0 ? 512 : 0)
    coalescer = TCPCoalescer(
      capacity: DataplaneConstants.batchSize,
      udp: core.tunOffloads & (TunDevice.offloadUSO4 | TunDevice.offloadUSO6) == TunDevice.offloadUSO4
        | TunDevice.offloadUSO6)
    outboundCapacity = gsoTUN || workers > 1 ? 1024 : tunReads
    uring = try URing(entries: 1024)
    var buffers: [ProvidedBuffers] = []
    for i in 0..<core.sockets.count {
      buffers.append(
        try ProvidedBuffers(
          ring: uring, group: UInt16(i), count: udpGRO ? 256 : 512,
          size: udpGRO ? max(65536 + 1024, core.slotSize) : core.slotSize))
    }
    receiveBuffers = buffers
    receiveHeaders = .allocate(capacity: max(1, core.sockets.count))
    for i in 0..<core.sockets.count {
      // The kernel copies name and control into the buffer in front of the payload.
      receiveHeaders[i] = msghdr(
        msg_name: nil, msg_namelen: socklen_t(MemoryLayout<SocketAddressStorage>.size), msg_iov: nil, msg_iovlen: 0,
        msg_control: nil, msg_controllen: SocketAddress.controlSpace, msg_flags: 0)
    }
    slab = PacketMemory.allocate(tunReads * tunSlotSize)
    inbound = BatchArrays(capacity: batch, slab: slab)
    outbound = BatchArrays(capacity: outboundCapacity, slab: slab)
  }

  deinit {
    slab.deallocate()
    receiveHeaders.deallocate()
    signalInfo.deallocate()
    mailboxValue.deallocate()
    handoffValue.deallocate()
    wakeOne.deallocate()
    completions.deallocate()
  }

  @inline(__always)
  func userData(_ kind: URingTag.Kind, _ index: UInt32) -> UInt64 { URingTag(kind, index).userData }

  func slot(_ i: Int) -> UnsafeMutableRawPointer { slab + i * tunSlotSize }

  // MARK: submissions

  func armReceive(_ socket: Int) {
    guard let sqe = uring.sqe() else { return }
    io_uring_prep_recvmsg_multishot(sqe, core.sockets[socket].fd, receiveHeaders + socket, 0)
    CURing_sqe_set_buffer_select(sqe, UInt16(socket))
    io_uring_sqe_set_data64(sqe, userData(.receive, UInt32(socket)))
  }

  /// Reads a packet (after its virtio-net header, if any) into TUN slot `i`, at the headroom.
  func postTunRead(_ i: Int) {
    guard let sqe = uring.sqe() else { return }
    let room = tunSlotSize - DataplaneConstants.headroom - DataplaneConstants.tailroom + vnetLength
    io_uring_prep_read(sqe, core.tunFD, slot(i) + DataplaneConstants.headroom - vnetLength, UInt32(room), 0)
    io_uring_sqe_set_data64(sqe, userData(.tunRead, UInt32(i)))
  }

  func postSignalRead() {
    guard let signals, let sqe = uring.sqe() else { return }
    io_uring_prep_read(sqe, signals.fd, signalInfo, UInt32(MemoryLayout<signalfd_siginfo>.size), 0)
    io_uring_sqe_set_data64(sqe, userData(.signal, 0))
  }

  func postMailboxRead() {
    guard let m = core.mailbox, let sqe = uring.sqe() else { return }
    io_uring_prep_read(sqe, m.loopFDs[core.pipeline.worker], mailboxValue, 8, 0)
    io_uring_sqe_set_data64(sqe, userData(.mailbox, 0))
  }

  func postPuntPoll() {
    guard let p = core.punt, let sqe = uring.sqe() else { return }
    io_uring_prep_poll_add(sqe, p.pollFD, UInt32(POLLIN))
    io_uring_sqe_set_data64(sqe, userData(.punt, 0))
  }

  // MARK: the loop

  /// Runs until SIGINT or SIGTERM.
  public func run() {
    for s in 0..<core.sockets.count { armReceive(s) }
    for i in 0..<tunReads { postTunRead(i) }
    postSignalRead()
    postPuntPoll()
    postMailboxRead()
    postHandoffRead()
    while !core.shouldStop {
      // Between the batches of the last round and the wait: timers, changes, requests. Its length
      // is the loop's stall (``LoopCore/stallMax``).
      let since = LoopCore.now()
      let sinceCPU = LoopCore.threadCPU()
      core.serviceRequests()
      let now = LoopCore.now()
      core.tick(now: now)
      let waitNanos =
        core.sweeping ? 50_000 : max(1_000_000, min(1_000_000_000, Int(core.nextTick &- now)))
      var ts = __kernel_timespec(tv_sec: Int64(waitNanos / 1_000_000_000), tv_nsec: Int64(waitNanos % 1_000_000_000))
      var first: UnsafeMutablePointer<io_uring_cqe>? = nil
      core.noteStall(cpu: LoopCore.threadCPU() &- sinceCPU, wall: LoopCore.now() &- since)
      let r = io_uring_submit_and_wait_timeout(&uring.ring, &first, 1, &ts, nil)
      if r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY {
        core.failure = "io_uring_submit_and_wait failed: \(String(cString: strerror(-r))) (errno \(-r))"
        break
      }
      drainCompletions()
    }
    core.mesh?.stopAll()  // a worker that leaves takes the others with it: its tunnels have no one else
    cancelEverything()
    core.publish()
    core.mailbox?.loopExited()
  }

  /// Cancels every request in flight and waits (at most a second) for their completions, so that
  /// the ring holds no reference to the TUN or the sockets: closing the TUN then removes the device
  /// at once instead of whenever the kernel's ring teardown gets to it.
  func cancelEverything() {
    guard let sqe = uring.sqe() else { return }
    io_uring_prep_cancel64(sqe, 0, Int32(IORING_ASYNC_CANCEL_ANY))
    io_uring_sqe_set_data64(sqe, 0)
    let deadline = LoopCore.now() + 1_000_000_000
    var quiet = 0
    while quiet < 2 && LoopCore.now() < deadline {
      var ts = __kernel_timespec(tv_sec: 0, tv_nsec: 20_000_000)
      var first: UnsafeMutablePointer<io_uring_cqe>? = nil
      // At shutdown: -ETIME (nothing completed within 20 ms) is the expected answer, and any
      // other failure ends the wait at the deadline; what completed is taken below either way.
      _ = io_uring_submit_and_wait_timeout(&uring.ring, &first, 1, &ts, nil)
      let n = io_uring_peek_batch_cqe(&uring.ring, completions, 256)
      io_uring_cq_advance(&uring.ring, n)
      quiet = n == 0 ? quiet + 1 : 0
    }
  }

  /// Handles every completion waiting, as batches: received datagrams through the inbound path,
  /// TUN packets through the outbound path.
  func drainCompletions() {
    while true {
      let n = Int(io_uring_peek_batch_cqe(&uring.ring, completions, 256))
      if n == 0 { break }
      for k in 0..<n {
        guard let cqe = completions[k] else { continue }
        handle(cqe)
        if inboundCount == batch { flushInbound() }
        if outboundCount >= outboundCapacity - SendPool.maxSegments { flushOutbound() }
      }
      io_uring_cq_advance(&uring.ring, UInt32(n))
    }
    drainHandoffs()
    flushInbound()
    flushOutbound()
    publishHandoffs()
    for b in receiveBuffers { b.publish() }
  }

  func handle(_ cqe: UnsafeMutablePointer<io_uring_cqe>) {
    guard let tag = URingTag(userData: io_uring_cqe_get_data64(cqe)) else { return }
    let index = Int(tag.index)
    let res = cqe.pointee.res
    switch tag.kind {
    case .receive:
      if res >= 0 && cqe.pointee.flags & UInt32(IORING_CQE_F_BUFFER) != 0 {
        collectDatagram(socket: index, buffer: UInt16(truncatingIfNeeded: CURing_cqe_buffer_id(cqe)), length: Int(res))
      }
      // Multishot stops on errors (ENOBUFS when every buffer is in use) and says so: re-arm.
      if cqe.pointee.flags & UInt32(IORING_CQE_F_MORE) == 0 { armReceive(index) }
    case .tunRead:
      if res > vnetLength { collectTunPacket(slot: index, length: Int(res) - vnetLength) } else { postTunRead(index) }
    case .send:
      completeSend(index, result: res)
    case .tunWrite:
      if res < 0 { core.tunWriteDropped &+= 1 }
      releaseInbound(UInt32(index))
    case .tunWriteV:
      completeTunWrite(index, result: res)
    case .signal:
      if res == Int32(MemoryLayout<signalfd_siginfo>.size) {
        signals?.apply(Int32(signalInfo.pointee.ssi_signo), to: core)
      }
      postSignalRead()
    case .punt:
      core.servicePunt()
      postPuntPoll()
    case .mailbox:
      core.mailboxSignalled = true
      postMailboxRead()
    case .handoff:
      postHandoffRead()  // the rings themselves are read after every round of completions
    case .wake:
      break
    }
  }
}

/// The per-packet arrays of one batch: buffers, addressing, verdicts, and where each came from.
final class BatchArrays {
  let packets: UnsafeMutablePointer<PacketBuffer>
  let addresses: UnsafeMutablePointer<DatagramAddress>
  let verdicts: UnsafeMutablePointer<Verdict>
  /// A TUN slot index, or group << 16 | provided buffer id.
  let origin: UnsafeMutablePointer<UInt32>

  init(capacity n: Int, slab: UnsafeMutableRawPointer) {
    packets = .allocate(capacity: n)
    addresses = .allocate(capacity: n)
    verdicts = .allocate(capacity: n)
    origin = .allocate(capacity: n)
    let zero = Endpoint(address: .v4(0), port: 0)
    packets.initialize(repeating: PacketBuffer(base: slab, capacity: 0, start: 0, count: 0), count: n)
    addresses.initialize(repeating: DatagramAddress(remote: zero, local: zero), count: n)
    verdicts.initialize(repeating: .passed, count: n)
    origin.initialize(repeating: 0, count: n)
  }

  deinit {
    packets.deallocate()
    addresses.deallocate()
    verdicts.deallocate()
    origin.deallocate()
  }
}
