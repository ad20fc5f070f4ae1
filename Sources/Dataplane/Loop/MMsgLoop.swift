// SPDX-License-Identifier: Apache-2.0
// The fallback loop (`--io mmsg`): poll, then batches through the loop core's device and sockets
// (the kernel's TUN queue and UDP sockets: TUN read/write, recvmmsg/sendmmsg; in the unit tests,
// in-memory ones driven by ``MMsgLoop/step()``).
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// A loop over poll(2) with batches of datagrams and packets. Owns its buffers; runs on one thread.
public final class MMsgLoop {
  let core: LoopCore
  let signals: SignalEvents?
  let batch: Int
  let slotSize: Int
  let slab: UnsafeMutableRawPointer
  let packets: UnsafeMutablePointer<PacketBuffer>
  let addresses: UnsafeMutablePointer<DatagramAddress>
  let verdicts: UnsafeMutablePointer<Verdict>
  /// The slots as the sockets see them.
  let datagrams: DatagramBatch
  /// Indices of the packets to send, per socket.
  @exclusivity(unchecked) var sendIndices: [[Int]]

  /// - Parameter signals: the signalfd to poll (nil: none, for a loop driven by ``step()``).
  public init(core: LoopCore, signals: SignalEvents?, batch: Int = DataplaneConstants.batchSize) {
    self.core = core
    self.signals = signals
    self.batch = batch
    slotSize = core.slotSize
    slab = PacketMemory.allocate(batch * slotSize)
    packets = .allocate(capacity: batch)
    addresses = .allocate(capacity: batch)
    verdicts = .allocate(capacity: batch)
    let zero = Endpoint(address: .v4(0), port: 0)
    addresses.initialize(repeating: DatagramAddress(remote: zero, local: zero), count: batch)
    verdicts.initialize(repeating: .passed, count: batch)
    packets.initialize(repeating: PacketBuffer(base: slab, capacity: slotSize, start: 0, count: 0), count: batch)
    datagrams = DatagramBatch(
      packets: packets, addresses: addresses, slab: slab, slotSize: slotSize, headroom: DataplaneConstants.headroom)
    sendIndices = Array(repeating: [], count: core.outer.count)
    for i in 0..<sendIndices.count { sendIndices[i].reserveCapacity(batch) }
  }

  deinit {
    slab.deallocate()
    packets.deallocate()
    addresses.deallocate()
    verdicts.deallocate()
  }

  /// Runs until SIGINT or SIGTERM, polling the kernel's descriptors.
  public func run() {
    var fds = [
      pollfd(fd: signals?.fd ?? -1, events: Int16(POLLIN), revents: 0),
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
      let timeout = prepare()
      let n = Sys.poll(&fds, timeout: timeout)
      if n < 0 && errno != EINTR {
        core.failure = "poll failed: \(String(cString: strerror(errno))) (errno \(errno))"
        break
      }
      if fds[0].revents != 0, let signals { signals.drain(into: core) }
      if fds[1].revents != 0 { readTUN() }
      for i in 0..<core.sockets.count where fds[2 + i].revents != 0 { receive(from: i) }
      if let m = core.mailbox, fds[mailboxSlot].revents != 0 {
        Mailbox.drain(m.loopFD)
        core.mailboxSignalled = true
      }
      if core.punt != nil, fds[puntSlot].revents != 0 { core.servicePunt() }
    }
  }

  /// One round as if everything were readable: requests and timers, the device, every socket.
  /// For a loop on in-memory devices and sockets (the unit tests), which has nothing to poll.
  public func step() {
    _ = prepare()
    readTUN()
    for i in 0..<core.outer.count { receive(from: i) }
  }

  /// Between batches: requests, changes, timers. - Returns: how long poll may wait (ms).
  func prepare() -> Int32 {
    let since = LoopCore.now()
    let sinceCPU = LoopCore.threadCPU()
    core.serviceRequests()
    let now = LoopCore.now()
    core.tick(now: now)
    let timeout = core.sweeping ? 0 : Int32(max(1, min(1000, (core.nextTick &- now) / 1_000_000)))
    core.noteStall(cpu: LoopCore.threadCPU() &- sinceCPU, wall: LoopCore.now() &- since)
    return timeout
  }

  func slot(_ i: Int) -> UnsafeMutableRawPointer { slab + i * slotSize }

  /// Reads up to a batch of packets from the device, encapsulates them, sends them per socket.
  func readTUN() {
    var n = 0
    let device = core.device
    let vnet = device.vnetHeader ? VirtioNetHeader.size : 0
    let room = slotSize - DataplaneConstants.headroom - DataplaneConstants.tailroom + vnet
    while n < batch {
      guard let r = device.readPacket(into: slot(n) + DataplaneConstants.headroom - vnet, capacity: room), r > vnet
      else { break }
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
    for (s, indices) in sendIndices.enumerated() where !indices.isEmpty {
      let sent = core.outer[s].send(datagrams, indices: indices)
      core.udpSendDropped &+= UInt64(indices.count - sent)  // the kernel's buffer was full
    }
  }

  /// Receives a batch from socket `s`, decapsulates it, writes to the device, punts IKE.
  func receive(from s: Int) {
    let n = core.outer[s].receive(into: datagrams, max: batch)
    guard n > 0 else { return }
    core.batches &+= 1
    core.batchedPackets &+= UInt64(n)
    core.applyChanges()  // before the batch: a packet collected after a change must meet it
    core.pipeline.batchTime = LoopCore.now()  // one clock read per batch: the SAs' last use
    core.pipeline.inbound(packets, addresses: addresses, verdicts: verdicts, count: n)
    let device = core.device
    let vnet = device.vnetHeader ? VirtioNetHeader.size : 0
    for i in 0..<n {
      switch verdicts[i] {
      case .decapsulated:
        let data = packets[i].data - vnet
        if vnet > 0 { VirtioNetHeader.writeNone(to: data) }
        if !device.writePacket(data, count: packets[i].count + vnet) { core.tunWriteDropped &+= 1 }
      case .ike:
        core.punt?.punt(packets[i].bytes, from: addresses[i].remote, to: addresses[i].local)
      default:
        break
      }
    }
  }
}
