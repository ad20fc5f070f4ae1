// SPDX-License-Identifier: Apache-2.0
// What the io_uring and recvmmsg loops share: the sockets, the TUN, the punt channel, socket
// choice, NAT-keepalive timing, and the loop-level counters.
import ESP
import Forwarding
import UDPEncap

#if canImport(Glibc)
  import Glibc
#endif

/// Everything a loop drives, and the decisions that do not depend on the I/O backend.
/// Not thread-safe; owned by the loop's thread.
public final class LoopCore {
  public let pipeline: Pipeline
  /// The TUN device (nil when the loop runs on an in-memory device, in tests).
  public let tun: TunDevice?
  /// This worker's TUN queue (the device's only descriptor with one worker; -1 in memory).
  public let tunFD: Int32
  /// The offloads the TUN accepted (``TunDevice/offloads``; 0 in memory).
  public let tunOffloads: UInt32
  /// This worker's listen sockets, one per `listen` entry (SO_REUSEPORT siblings with several);
  /// empty in memory. The io_uring loop submits on their descriptors.
  public let sockets: [UDPSocket]
  /// The inner side as the recvmmsg loop reads and writes it: this worker's TUN queue, or a fake.
  public let device: any PacketDevice
  /// The outer sockets as the recvmmsg loop, keepalives and IKE replies use them: ``sockets``, or
  /// fakes (same order: socket indices are the same in both).
  public let outer: [any DatagramSocket]
  public let punt: PuntChannel?
  /// NAT-keepalive interval in ns (0: off); a reload can change it (``TableChange/keepalive(_:)``).
  @exclusivity(unchecked) var keepaliveInterval: UInt64
  /// The changes the control thread queued for this worker (nil: no control plane, e.g. in tests).
  @exclusivity(unchecked) var changes: ChangeQueue?
  /// What this worker publishes for `stats` and metrics (``WorkerStats``), refreshed every round.
  public let stats = WorkerStats()
  /// The longest time (ns) the loop spent between two batches on anything but packets (applying
  /// changes, timers, requests), in this thread's CPU time: what espd itself kept the packets
  /// waiting for. Published as `loop_stall_max_ns`.
  @exclusivity(unchecked) public internal(set) var stallMax: UInt64 = 0
  /// The same stretch in wall-clock time, which also counts the time the thread waited for a CPU
  /// (preempted by other threads or processes): `loop_gap_max_ns`.
  @exclusivity(unchecked) public internal(set) var gapMax: UInt64 = 0
  /// Where the owner's once-a-second sweeps of timed and initiator tunnels are (a slice per round).
  @exclusivity(unchecked) var sweepTimed = Int.max
  @exclusivity(unchecked) var sweepInitiators = Int.max
  @exclusivity(unchecked) var sweepNow: UInt64 = 0
  /// Tunnels swept per round (the rest wait for the next round, a few microseconds later).
  static let sweepSlice = 256
  /// Set by a signal: leave the loop after the current batch.
  @exclusivity(unchecked) public internal(set) var stopRequested = false
  /// Set by SIGUSR1: print the counters after the current batch.
  @exclusivity(unchecked) var statsRequested = false
  /// Set by SIGHUP: reload the configuration after the current batch.
  @exclusivity(unchecked) var reloadRequested = false
  /// The handoff with the control thread (nil: no control plane, e.g. in tests).
  public let mailbox: Mailbox?
  /// The rings and wake-ups shared with the other workers (nil with one worker).
  @exclusivity(unchecked) var mesh: HandoffMesh?
  /// Bytes per packet slot (``DataplaneConstants/slotSize(mtu:)`` of the TUN's MTU).
  public let slotSize: Int
  /// Set when the mailbox's eventfd fired: changes may be queued (applied after the current batch).
  @exclusivity(unchecked) var mailboxSignalled = false
  /// Error that ended the loop (a ring or poll failure), for `espd run` to report and exit 1.
  @exclusivity(unchecked) public internal(set) var failure: String? = nil
  /// Receives the stats JSON when SIGUSR1 asks for it.
  @exclusivity(unchecked) public var onStats: (String) -> Void = { _ in }
  /// Loop-level drops (kernel buffers full), and keepalives sent.
  @exclusivity(unchecked) public internal(set) var tunWriteDropped: UInt64 = 0
  @exclusivity(unchecked) public internal(set) var udpSendDropped: UInt64 = 0
  @exclusivity(unchecked) public internal(set) var keepalivesSent: UInt64 = 0
  /// Offloads: GSO packets read from the TUN and the segments cut from them, sendmsgs that carried
  /// several datagrams (UDP GSO), segments dropped for want of a free slot.
  @exclusivity(unchecked) public internal(set) var tunGSOPackets: UInt64 = 0
  @exclusivity(unchecked) public internal(set) var tunGSOSegments: UInt64 = 0
  @exclusivity(unchecked) public internal(set) var udpGSOSends: UInt64 = 0
  @exclusivity(unchecked) public internal(set) var offloadDropped: UInt64 = 0
  /// TUN writes that carried several decrypted TCP segments as one GSO packet, and those segments.
  @exclusivity(unchecked) public internal(set) var tunGROPackets: UInt64 = 0
  @exclusivity(unchecked) public internal(set) var tunGROSegments: UInt64 = 0
  /// UDP GRO: receives that carried several datagrams, and those datagrams.
  @exclusivity(unchecked) public internal(set) var udpGROReceives: UInt64 = 0
  @exclusivity(unchecked) public internal(set) var udpGRODatagrams: UInt64 = 0
  /// Set when the kernel refused a UDP GSO send (GSO is then off, or off above that size).
  @exclusivity(unchecked) public internal(set) var udpGSODisabled = false
  /// Packets handed to the worker that owns their tunnel, and those lost because its ring was full.
  @exclusivity(unchecked) public internal(set) var handoffPackets: UInt64 = 0
  @exclusivity(unchecked) public internal(set) var handoffDropped: UInt64 = 0
  /// Replies of the IKE daemon that could not be sent (no socket for their source, or the kernel
  /// refused them).
  @exclusivity(unchecked) public internal(set) var puntReplyDropped: UInt64 = 0
  /// Batches handled and packets in them (mean batch size = packets / batches).
  @exclusivity(unchecked) public internal(set) var batches: UInt64 = 0
  @exclusivity(unchecked) public internal(set) var batchedPackets: UInt64 = 0
  @exclusivity(unchecked) var nextTick: UInt64 = 0

  /// - Parameters:
  ///   - tunFD: the TUN queue this worker reads and writes (default: the device's first).
  ///   - mesh: with several workers, the rings between them.
  ///   - mtu: the TUN's MTU (sizes the packet slots).
  public convenience init(
    pipeline: Pipeline, tun: TunDevice, sockets: [UDPSocket], punt: PuntChannel?, keepaliveSeconds: Int,
    mailbox: Mailbox? = nil, tunFD: Int32? = nil, mtu: Int = 1500
  ) {
    self.init(
      pipeline: pipeline, tun: tun, sockets: sockets, punt: punt, keepaliveSeconds: keepaliveSeconds,
      mailbox: mailbox, tunFD: tunFD, mesh: nil, mtu: mtu)
  }

  init(
    pipeline: Pipeline, tun: TunDevice, sockets: [UDPSocket], punt: PuntChannel?, keepaliveSeconds: Int,
    mailbox: Mailbox?, tunFD: Int32?, mesh: HandoffMesh?, mtu: Int
  ) {
    slotSize = DataplaneConstants.slotSize(mtu: mtu)
    self.mailbox = mailbox
    self.pipeline = pipeline
    self.tun = tun
    self.tunFD = tunFD ?? tun.fd
    tunOffloads = tun.offloads
    self.mesh = mesh
    self.sockets = sockets
    device = TunQueue(fd: self.tunFD, vnetHeader: tun.vnetHeader)
    outer = sockets
    self.punt = punt
    keepaliveInterval = UInt64(max(0, keepaliveSeconds)) * 1_000_000_000
  }

  /// A loop core on other devices and sockets than the kernel's (the unit tests' in-memory ones):
  /// for the recvmmsg loop's ``MMsgLoop/step()``, without punt channel or mailbox.
  init(
    pipeline: Pipeline, device: any PacketDevice, outer: [any DatagramSocket], keepaliveSeconds: Int,
    changes: ChangeQueue? = nil, mtu: Int = 1500
  ) {
    slotSize = DataplaneConstants.slotSize(mtu: mtu)
    mailbox = nil
    self.pipeline = pipeline
    tun = nil
    tunFD = -1
    tunOffloads = 0
    mesh = nil
    sockets = []
    self.device = device
    self.outer = outer
    punt = nil
    self.changes = changes
    keepaliveInterval = UInt64(max(0, keepaliveSeconds)) * 1_000_000_000
  }

  /// The socket to send from for a datagram whose local endpoint is `local`: the socket bound to
  /// exactly that endpoint, else a wildcard socket of the family on that port, else any of the family.
  func socketIndex(for local: Endpoint) -> Int? {
    var wildcard: Int? = nil
    var family: Int? = nil
    for (i, s) in outer.enumerated() where s.local.address.isV6 == local.address.isV6 {
      if s.local == local { return i }
      if s.local.port == local.port && s.local.address.isUnspecifiedAddress { wildcard = wildcard ?? i }
      family = family ?? i
    }
    return wildcard ?? family
  }

  /// This worker's loop-level counters (with its punt channel's), as one value.
  @inline(__always)
  public var loopCounters: LoopCounters {
    var c = LoopCounters()
    c.tunWriteDropped = tunWriteDropped
    c.udpSendDropped = udpSendDropped
    c.keepalivesSent = keepalivesSent
    if let punt {
      c.ikePunted = punt.punted
      c.ikePuntDropped = punt.dropped
      c.ikeRateLimited = punt.rateLimited
      c.ikeSourceLimited = punt.sourceLimited
      c.ikeReplies = punt.replies
      c.ikeListenReceived = punt.listenReceived
      c.ikePuntForeign = punt.foreign
    }
    c.batches = batches
    c.batchedPackets = batchedPackets
    c.tunGSOPackets = tunGSOPackets
    c.tunGSOSegments = tunGSOSegments
    c.udpGSOSends = udpGSOSends
    c.offloadDropped = offloadDropped
    c.tunGROPackets = tunGROPackets
    c.tunGROSegments = tunGROSegments
    c.udpGROReceives = udpGROReceives
    c.udpGRODatagrams = udpGRODatagrams
    c.udpGSORefused = udpGSODisabled
    c.handoffPackets = handoffPackets
    c.handoffDropped = handoffDropped
    c.ikeReplyDropped = puntReplyDropped
    return c
  }

  /// Copies this worker's counters into ``stats`` (once a round; a few dozen stores).
  public func publish() {
    stats.publish(core: self)
  }

  /// Once a second, a slice per round: lifetime checks of the timed tunnels this worker owns, and
  /// NAT-keepalives (RFC 3948 §4) for its initiator tunnels idle for the interval.
  func tick(now: UInt64) {
    if now >= nextTick {
      nextTick = now + 1_000_000_000
      sweepNow = now
      sweepTimed = 0
      sweepInitiators = 0
      punt?.retryHello(now: now)
    }
    let table = pipeline.table
    if sweepTimed < table.timed.count {
      let end = min(table.timed.count, sweepTimed + LoopCore.sweepSlice)
      for i in sweepTimed..<end { pipeline.checkLifetimes(table.timed[i], now: sweepNow) }
      sweepTimed = end
    }
    guard sweepInitiators < table.initiators.count else { return }
    let end = min(table.initiators.count, sweepInitiators + LoopCore.sweepSlice)
    let slice = sweepInitiators..<end
    sweepInitiators = end
    guard keepaliveInterval > 0 else { return }
    for i in slice {
      let t = table.initiators[i]
      guard let peer = t.peer, now &- t.lastSent >= keepaliveInterval else { continue }
      let local = pipeline.sourceEndpoint(for: t, peer: peer)
      guard let i = socketIndex(for: local) else { continue }
      let sent = UDPEncap.natKeepalive.withUnsafeBytes {
        (try? outer[i].send($0, to: peer, from: local.address)) ?? false
      }
      if sent {
        t.lastSent = now
        t.count(TunnelWord.keepalivesSent)
        keepalivesSent &+= 1
      }
    }
  }

  /// Whether the tick has a sweep in progress (the loop then waits briefly, not for the next second).
  var sweeping: Bool {
    sweepTimed < pipeline.table.timed.count || sweepInitiators < pipeline.table.initiators.count
  }

  /// Applies every change queued for this worker. Called before each batch is processed (so a
  /// packet collected after a change was queued always meets it) and between rounds.
  @inline(__always)
  func applyChanges() {
    guard let changes, changes.hasPending else { return }
    applyQueued(changes)
  }

  private func applyQueued(_ queue: ChangeQueue) {
    let start = LoopCore.now()
    let startCPU = LoopCore.threadCPU()
    var list = queue.take()
    let n = list.count
    while let c = list.popLast() {
      if case .keepalive(let ns) = c { keepaliveInterval = ns }
      pipeline.apply(c) { queue.discard($0) }
    }
    queue.markApplied(n)
    noteStall(cpu: LoopCore.threadCPU() &- startCPU, wall: LoopCore.now() &- start)
  }

  /// Records time spent away from packets (this thread's CPU time, and wall-clock time).
  @inline(__always)
  func noteStall(cpu: UInt64, wall: UInt64) {
    if cpu > stallMax { stallMax = cpu }
    if wall > gapMax { gapMax = wall }
  }

  /// Between batches: apply queued changes, hand lifetime events over, pass SIGUSR1 (print the
  /// counters) and SIGHUP (reload) to the control thread, publish the counters.
  func serviceRequests() {
    mailboxSignalled = false
    applyChanges()
    if !pipeline.events.isEmpty, let mailbox { mailbox.post(events: pipeline.takeEvents()) }
    if !pipeline.peerEvents.isEmpty, let mailbox { mailbox.post(peerEvents: pipeline.takePeerEvents()) }
    if statsRequested {
      statsRequested = false
      if let mailbox { mailbox.requestStatsPrint() } else { onStats(pipeline.snapshot(loop: loopCounters).statsJSON) }
    }
    if reloadRequested {
      reloadRequested = false
      mailbox?.requestReload()
    }
    publish()
  }

  /// SIGINT/SIGTERM: this worker leaves after the current batch, and so does every other.
  func requestStop() {
    stopRequested = true
    mesh?.stopAll()
  }

  /// Whether this worker should leave its loop.
  var shouldStop: Bool {
    if !stopRequested, let mesh, mesh.stopped { stopRequested = true }
    return stopRequested
  }

  /// This thread's CPU time in nanoseconds.
  static func threadCPU() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
  }

  /// Monotonic nanoseconds.
  static func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
  }
}

extension IPAddress {
  /// 0.0.0.0 or ::.
  var isUnspecifiedAddress: Bool { self == .v4(0) || self == .v6(0, 0) }
}
