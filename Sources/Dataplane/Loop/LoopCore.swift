// SPDX-License-Identifier: Apache-2.0
// What the io_uring and recvmmsg loops share: the sockets, the TUN, the punt channel, socket
// choice, NAT-keepalive timing, and the loop-level counters.
import ESP
import UDPEncap

#if canImport(Glibc)
  import Glibc
#endif

/// Everything a loop drives, and the decisions that do not depend on the I/O backend.
/// Not thread-safe; owned by the loop's thread.
public final class LoopCore {
  public let pipeline: Pipeline
  public let tun: TunDevice
  /// This worker's TUN queue (the device's only descriptor with one worker).
  public let tunFD: Int32
  /// This worker's listen sockets, one per `listen` entry (SO_REUSEPORT siblings with several).
  public let sockets: [UDPSocket]
  public let punt: PuntChannel?
  /// NAT-keepalive interval in ns (0: off).
  let keepaliveInterval: UInt64
  /// Set by a signal: leave the loop after the current batch.
  public internal(set) var stopRequested = false
  /// Set by SIGUSR1: print the counters after the current batch.
  var statsRequested = false
  /// Set by SIGHUP: reload the configuration after the current batch.
  var reloadRequested = false
  /// The handoff with the control thread (nil: no control plane, e.g. in tests).
  public let mailbox: Mailbox?
  /// The rings and wake-ups shared with the other workers (nil with one worker).
  var mesh: HandoffMesh?
  /// Bytes per packet slot (``DataplaneConstants/slotSize(mtu:)`` of the TUN's MTU).
  public let slotSize: Int
  /// Set when the mailbox's eventfd fired: take the work after the current batch.
  var mailboxSignalled = false
  /// Receives the stats JSON when SIGUSR1 asks for it.
  public var onStats: (String) -> Void = { _ in }
  /// Loop-level drops (kernel buffers full), and keepalives sent.
  public internal(set) var tunWriteDropped: UInt64 = 0
  public internal(set) var udpSendDropped: UInt64 = 0
  public internal(set) var keepalivesSent: UInt64 = 0
  /// Offloads: GSO packets read from the TUN and the segments cut from them, sendmsgs that carried
  /// several datagrams (UDP GSO), segments dropped for want of a free slot.
  public internal(set) var tunGSOPackets: UInt64 = 0
  public internal(set) var tunGSOSegments: UInt64 = 0
  public internal(set) var udpGSOSends: UInt64 = 0
  public internal(set) var offloadDropped: UInt64 = 0
  /// TUN writes that carried several decrypted TCP segments as one GSO packet, and those segments.
  public internal(set) var tunGROPackets: UInt64 = 0
  public internal(set) var tunGROSegments: UInt64 = 0
  /// UDP GRO: receives that carried several datagrams, and those datagrams.
  public internal(set) var udpGROReceives: UInt64 = 0
  public internal(set) var udpGRODatagrams: UInt64 = 0
  /// Set when the kernel refused a UDP GSO send (GSO is then off, or off above that size).
  public internal(set) var udpGSODisabled = false
  /// Packets handed to the worker that owns their tunnel, and those lost because its ring was full.
  public internal(set) var handoffPackets: UInt64 = 0
  public internal(set) var handoffDropped: UInt64 = 0
  /// Batches handled and packets in them (mean batch size = packets / batches).
  public internal(set) var batches: UInt64 = 0
  public internal(set) var batchedPackets: UInt64 = 0
  var nextTick: UInt64 = 0

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
    self.mesh = mesh
    self.sockets = sockets
    self.punt = punt
    keepaliveInterval = UInt64(max(0, keepaliveSeconds)) * 1_000_000_000
  }

  /// The socket to send from for a datagram whose local endpoint is `local`: the socket bound to
  /// exactly that endpoint, else a wildcard socket of the family on that port, else any of the family.
  func socketIndex(for local: Endpoint) -> Int? {
    var wildcard: Int? = nil
    var family: Int? = nil
    for (i, s) in sockets.enumerated() where s.local.address.isV6 == local.address.isV6 {
      if s.local == local { return i }
      if s.local.port == local.port && s.local.address.isUnspecifiedAddress { wildcard = wildcard ?? i }
      family = family ?? i
    }
    return wildcard ?? family
  }

  /// Extra counters for the stats JSON.
  public var loopCounters: [(String, UInt64)] {
    [
      ("tun_write_dropped", tunWriteDropped), ("udp_send_dropped", udpSendDropped), ("keepalives_sent", keepalivesSent),
      ("ike_punted", punt?.punted ?? 0), ("ike_punt_dropped", punt?.dropped ?? 0),
      ("ike_rate_limited", punt?.rateLimited ?? 0), ("ike_source_limited", punt?.sourceLimited ?? 0),
      ("ike_replies", punt?.replies ?? 0),
      ("batches", batches), ("batched_packets", batchedPackets), ("tun_gso_packets", tunGSOPackets),
      ("tun_gso_segments", tunGSOSegments), ("udp_gso_sends", udpGSOSends), ("offload_dropped", offloadDropped),
      ("tun_gro_packets", tunGROPackets), ("tun_gro_segments", tunGROSegments),
      ("udp_gro_receives", udpGROReceives), ("udp_gro_datagrams", udpGRODatagrams),
      ("udp_gso_refused", udpGSODisabled ? 1 : 0), ("handoff_packets", handoffPackets),
      ("handoff_dropped", handoffDropped),
    ]
  }

  /// Once a second: NAT-keepalives (RFC 3948 §4) for initiator tunnels idle for the interval.
  func tick(now: UInt64) {
    guard now >= nextTick else { return }
    nextTick = now + 1_000_000_000
    pipeline.checkLifetimes(now: now)
    guard keepaliveInterval > 0 else { return }
    for t in pipeline.table.tunnels where t.peerConfigured && pipeline.owns(t) {
      guard let peer = t.peer, now &- t.lastSent >= keepaliveInterval else { continue }
      let local = pipeline.sourceEndpoint(for: t, peer: peer)
      guard let i = socketIndex(for: local) else { continue }
      let sent = UDPEncap.natKeepalive.withUnsafeBytes {
        (try? sockets[i].send($0, to: peer, from: local.address)) ?? false
      }
      if sent {
        t.lastSent = now
        t.keepalivesSent &+= 1
        keepalivesSent &+= 1
      }
    }
  }

  /// Sends every reply the IKE daemon has queued, with the non-ESP marker, from the listen socket
  /// its header names (RFC 3948 §2.2).
  func forwardPuntReplies() {
    guard let punt else { return }
    var out = [UInt8](repeating: 0, count: 0)
    while let (header, ike) = punt.receive() {
      let (source, destination) = PuntChannel.endpoints(header)
      guard let i = socketIndex(for: source) else { continue }
      out.removeAll(keepingCapacity: true)
      out += [0, 0, 0, 0]
      out += ike
      _ = out.withUnsafeBytes { try? sockets[i].send($0, to: destination, from: source.address) }
    }
  }

  /// Between batches: park while the control thread swaps a snapshot in or counts, hand lifetime
  /// events over, pass SIGUSR1 (print the counters) and SIGHUP (reload) to the control thread.
  func serviceRequests() {
    if mailboxSignalled, let mailbox {
      mailboxSignalled = false
      mailbox.park(worker: pipeline.worker)
    }
    if !pipeline.events.isEmpty, let mailbox { mailbox.post(events: pipeline.takeEvents()) }
    if statsRequested {
      statsRequested = false
      if let mailbox { mailbox.requestStatsPrint() } else { onStats(pipeline.snapshot(loop: loopCounters).statsJSON) }
    }
    if reloadRequested {
      reloadRequested = false
      mailbox?.requestReload()
    }
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
