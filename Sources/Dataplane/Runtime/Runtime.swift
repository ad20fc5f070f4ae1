// SPDX-License-Identifier: Apache-2.0
// `espd run`: sets up the TUN (addresses, MTU, link), routes and policy rules, the listen sockets
// and the IKE punt channel from a configuration, runs a loop until SIGINT/SIGTERM, and tears down.
import CLinux
import CURing
import ESP
import Forwarding
import Logging

#if canImport(Glibc)
  import Glibc
#endif

/// Which I/O loop drives the packets.
public enum IOBackend: String, Sendable {
  /// io_uring: multishot receive into provided buffers, batched submissions.
  case uring
  /// poll + recvmmsg/sendmmsg (the fallback).
  case mmsg
}

/// Which offloads to use where the kernel has them (each is probed at start-up, and falls back
/// to the plain path when refused).
public struct OffloadOptions: Sendable, Equatable {
  /// TUN offloads: IFF_VNET_HDR with checksum, TSO4/6 and USO4/6 (GSO packets read from the TUN
  /// are cut into segments in userspace before sealing).
  public var tun: Bool
  /// UDP GSO on send: one sendmsg carries a run of same-size ESP datagrams to one peer.
  public var udpGSO: Bool
  /// UDP GRO on receive: one receive may carry many ESP datagrams of one peer.
  public var udpGRO: Bool
  public init(tun: Bool = true, udpGSO: Bool = true, udpGRO: Bool = true) {
    self.tun = tun
    self.udpGSO = udpGSO
    self.udpGRO = udpGRO
  }
  /// Everything off: one packet per read, write and send.
  public static let none = OffloadOptions(tun: false, udpGSO: false, udpGRO: false)
}

/// A running dataplane: owns every resource it set up, and removes what the kernel does not.
public final class Runtime {
  let logger: Logger
  let signals: SignalEvents
  let tun: TunDevice
  let netlink: Netlink
  let workers: WorkerSet
  let mailbox: Mailbox
  let control: ControlServer
  /// The first worker's loop state (the only one with `--workers 1`).
  var core: LoopCore { workers.cores[0] }
  /// The backend actually in use (io_uring may fall back to mmsg).
  public private(set) var backend: IOBackend
  let offloads: OffloadOptions

  /// Sets everything up.
  /// - Parameters:
  ///   - workers: packet loops, each with its own io_uring, TUN queue and SO_REUSEPORT sockets,
  ///     owning a share of the tunnels (io_uring only; the mmsg loop runs alone).
  /// - Throws: ``SystemError`` / ``NetlinkError`` with a one-line reason, or ``LookupTablesError``.
  public init(
    config: Config, configPath: String? = nil, backend requested: IOBackend,
    offloads: OffloadOptions = OffloadOptions(), workers requestedWorkers: Int = 1,
    logger: Logger
  ) throws {
    self.logger = logger
    self.offloads = offloads
    // Signals first, before anything could start a thread that would receive them instead.
    signals = try SignalEvents()
    let n = requested == .uring ? max(1, requestedWorkers) : 1
    let model = try ControlModel(config: config, workers: n, now: LoopCore.now())
    // Room for every tunnel the limits allow, reserved (not touched) so that slots never move.
    let tables = model.initialTables(reserve: config.limits.tunnels)
    let table = tables[0]
    if requestedWorkers > 1 && n == 1 {
      logger.warning("--io mmsg runs one worker; --workers \(requestedWorkers) ignored")
    }
    let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    if n > cpus { logger.warning("--workers \(n) on \(cpus) CPUs: workers will share cores") }
    mailbox = try Mailbox(workers: n)
    // TUN offloads only with io_uring: the recvmmsg loop has no room to cut GSO packets into.
    let vnet = offloads.tun && requested == .uring
    tun = try TunDevice(name: config.tun.name, multiQueue: n > 1, vnetHeader: vnet)
    for _ in 1..<n { _ = try tun.attachQueue() }
    if vnet {
      let base = TunDevice.offloadChecksum | TunDevice.offloadTSO4 | TunDevice.offloadTSO6
      let got = tun.setOffloads([base | TunDevice.offloadUSO4 | TunDevice.offloadUSO6, base, TunDevice.offloadChecksum])
      logger.info("tun offloads: \(TunDevice.describeOffloads(got))")
    }
    if !config.tun.addresses.contains(where: { $0.address.isV6 }) { tun.disableIPv6() }
    try tun.configure(mtu: config.tun.mtu, txQueueLength: config.tun.txQueueLength)
    netlink = try Netlink()
    let index = tun.index
    for a in config.tun.addresses { try netlink.addAddress(a, index: index) }
    let queueNote = n > 1 ? ", \(n) queues" : ""
    logger.info(
      "tun \(tun.name) up, mtu \(config.tun.mtu), txqueuelen \(config.tun.txQueueLength), addresses \(config.tun.addresses.map(\.description).joined(separator: ", "))\(queueNote)"
    )
    let routes = RouteInstaller(netlink: netlink, interfaceIndex: index, config: config)
    if routes.routes.contains(where: { $0.prefix.length == 0 && !$0.prefix.address.isV6 }) {
      // As wg-quick: with a full tunnel, reverse-path filtering must take the fwmark into account.
      FileIO.write("1", to: "/proc/sys/net/ipv4/conf/all/src_valid_mark")
    }
    try routes.install()
    let described = routes.installedDescription
    for line in described.prefix(20) { logger.info("\(line)") }
    if described.count > 20 { logger.info("… and \(described.count - 20) more routes and rules") }
    routes.dropPlan()
    do {
      // One socket per listen entry and worker: SO_REUSEPORT siblings when there are several.
      var sockets: [[UDPSocket]] = []
      for _ in 0..<n {
        sockets.append(
          try config.listen.map { l in
            try UDPSocket(
              listen: l, mark: RouteInstaller.fwmark, receiveBuffer: config.udpReceiveBuffer,
              sendBuffer: config.udpSendBuffer, reusePort: n > 1)
          })
      }
      let socketNote = n > 1 ? ", \(n) SO_REUSEPORT sockets" : ""
      for (i, l) in config.listen.enumerated() {
        let (rcv, snd) = sockets[0][i].buffers
        logger.info(
          "listening on udp \(l) (ESP-in-UDP and IKE, RFC 3948)\(socketNote); buffers: receive \(rcv) bytes, send \(snd) bytes (asked for \(config.udpReceiveBuffer) and \(config.udpSendBuffer); the kernel counts double)"
        )
        if rcv < config.udpReceiveBuffer || snd < config.udpSendBuffer {
          logger.warning(
            "udp \(l): the kernel granted smaller socket buffers than asked for (no CAP_NET_ADMIN for SO_RCVBUFFORCE/SO_SNDBUFFORCE?); raise net.core.rmem_max/wmem_max"
          )
        }
      }
      var punt: PuntChannel? = nil
      if let target = config.ikePunt {
        let l = config.limits
        let channel = try PuntChannel(
          target: target, local: config.ikePuntLocal, listen: config.ikeListen, mark: RouteInstaller.fwmark,
          queueBytes: l.ikeQueueBytes, perSecond: l.ikePerSecond, perSource: l.ikePerSourcePerSecond)
        punt = channel
        let log = logger
        channel.onReachability = { up in
          if up {
            log.notice("IKE punt target \(target) takes datagrams again")
          } else {
            log.warning("IKE punt target \(target) is gone (no socket there); IKE is dropped until it is back")
          }
        }
        if let local = config.ikePuntLocal { logger.info("IKE punt channel: espd's end is \(local)") }
        for e in config.ikeListen {
          logger.info("listening on udp \(e) for IKE only (no non-ESP marker; every datagram goes to \(target))")
        }
        channel.hello()
        logger.info(
          "IKE datagrams punted to \(target): queue \(channel.queueBytes) bytes (the kernel's count), at most \(l.ikePerSecond)/s, \(l.ikePerSourcePerSecond)/s per source address"
        )
      }
      let mesh = n > 1 ? try HandoffMesh(workers: n, slotSize: DataplaneConstants.slotSize(mtu: config.tun.mtu)) : nil
      let (device, box) = (tun, mailbox)
      workers = WorkerSet(
        (0..<n).map { w in
          LoopCore(
            pipeline: Pipeline(table: tables[w], worker: w, workers: n), tun: device, sockets: sockets[w],
            punt: w == 0 ? punt : nil, keepaliveSeconds: config.natKeepaliveSeconds, mailbox: box,
            tunFD: device.queues[w], mesh: mesh, mtu: config.tun.mtu)
        }, wakeFDs: mailbox.loopFDs)
      if n > 1 { workers.steering = Runtime.steer(sockets, table: table, logger: logger) }
      let plane = ControlPlane(
        model: model, routes: routes, mailbox: mailbox, workers: workers, logger: logger, configPath: configPath)
      control = try ControlServer(plane: plane, controlPath: config.control, metrics: config.metrics)
      logger.info("control socket \(config.control) (mode 0600)")
      if let m = config.metrics { logger.info("metrics on http://\(m)/metrics") }
    } catch {
      routes.uninstall()
      tun.close()
      throw error
    }
    backend = requested
    // Parsing the file and building the tables left freed heap behind (hundreds of MB for a million
    // tunnels): give it back to the kernel before the loops start.
    Sys.trimHeap()
    logger.info("\(model.count) tunnels, \(model.inboundSPIs.count) inbound SAs")
  }

  /// Attaches SPI steering to each listen entry's SO_REUSEPORT group (worker w's socket is index w).
  /// - Returns: nil, with a warning, when the kernel refuses eBPF here: datagrams are then spread
  ///   by the kernel's 4-tuple hash and handed over to their owner.
  static func steer(_ sockets: [[UDPSocket]], table: LookupTables, logger: Logger) -> SPISteering? {
    do throws(SystemError) {
      let steering = try SPISteering()
      for s in sockets[0] { try steering.attach(to: s) }
      steering.sync(to: table, workers: sockets.count)
      logger.info("inbound steering: SPI -> owner worker (eBPF on SO_REUSEPORT), \(steering.count) SPIs")
      return steering
    } catch {
      logger.warning("inbound steering by SPI unavailable (\(error)); datagrams spread by 4-tuple and handed over")
      return nil
    }
  }

  /// Runs the loops until SIGINT or SIGTERM, with the control thread beside them.
  /// - Parameter onStats: receives the stats JSON on SIGUSR1.
  public func run(onStats: @escaping (String) -> Void) throws {
    control.plane.onStats = onStats  // the workers ask the control thread, which sums their counters
    if backend == .uring {
      if try runURing() { return }
      backend = .mmsg
    }
    if workers.cores.count > 1 {
      logger.warning("the recvmmsg loop runs alone: one worker, one TUN queue")
      workers.keepFirst()
      tun.detachExtraQueues()
    }
    if tun.offloads != 0 { tun.setOffloads([]) }  // no GSO packets or partial checksums from here on
    for s in core.sockets { s.enableGRO(false) }  // recvmmsg takes one datagram per message
    logger.info("io: recvmmsg/sendmmsg")
    try control.start()
    defer { control.stop() }
    let loop = MMsgLoop(core: core, signals: signals)
    loop.run()
    try checkFailures()
  }

  /// Why `run` ends with exit 1: a loop that stopped on an error of its ring or poll.
  public struct LoopFailure: Error, CustomStringConvertible {
    public let description: String
  }

  /// Throws when a worker's loop ended on an error rather than a signal.
  private func checkFailures() throws {
    let failed = workers.cores.enumerated().compactMap { w, c in c.failure.map { "worker \(w): \($0)" } }
    guard !failed.isEmpty else { return }
    logger.critical("the packet loop stopped on an error: \(failed.joined(separator: "; "))")
    throw LoopFailure(description: "the packet loop stopped: \(failed.joined(separator: "; "))")
  }

  /// One io_uring loop per worker, each set up on the thread that runs it (a SINGLE_ISSUER ring
  /// belongs to the thread that made it); the first runs on this thread and reads the signals.
  /// - Returns: false, with nothing started, when a ring could not be set up (fall back to mmsg).
  private func runURing() throws -> Bool {
    let cores = workers.cores
    let gso = offloads.udpGSO && cores.allSatisfy { $0.sockets.allSatisfy(\.supportsGSO) }
    // GRO on every socket or on none: a loop told "no GRO" must not get coalesced datagrams.
    let sockets = cores.flatMap(\.sockets)
    let gro = offloads.udpGRO && sockets.map { $0.enableGRO() }.allSatisfy { $0 }
    if offloads.udpGRO && !gro { for s in sockets { s.enableGRO(false) } }
    let gate = StartGate(workers: cores.count - 1)
    var threads: [PThread] = []
    defer { for t in threads { t.join() } }
    do {
      for w in 1..<cores.count {
        let c = cores[w]
        threads.append(
          try PThread(name: "espd-worker\(w)") {
            let loop = try? URingLoop(core: c, signals: nil, udpGSO: gso, udpGRO: gro)
            guard gate.arrive(ready: loop != nil), let loop else { return }
            loop.run()
          })
      }
    } catch {
      gate.decide(run: false)  // the decision stands: the threads that did start leave when they arrive
      throw error
    }
    let first: URingLoop
    do {
      first = try URingLoop(core: cores[0], signals: signals, udpGSO: gso, udpGRO: gro)
    } catch {
      gate.decide(run: false)
      logger.warning("io_uring unavailable (\(error)); falling back to recvmmsg/sendmmsg")
      return false
    }
    guard gate.waitForAll() else {
      gate.decide(run: false)
      logger.warning("io_uring unavailable on a worker thread; falling back to recvmmsg/sendmmsg")
      return false
    }
    do {
      try control.start()
    } catch {
      gate.decide(run: false)
      throw error
    }
    defer { control.stop() }
    let workerNote = cores.count > 1 ? ", \(cores.count) workers" : ""
    logger.info("io: io_uring (\(first.setupDescription))\(workerNote)")
    gate.decide(run: true)
    first.run()
    for t in threads { t.join() }
    threads = []
    try checkFailures()
    return true
  }

  /// The counters as JSON, summed over the workers (after the loops have stopped).
  public var statsJSON: String { control.plane.snapshot().statsJSON }

  /// Removes the policy rules and routes, then closes the TUN (the kernel removes the device, its
  /// addresses and remaining routes before the close returns).
  public func shutdown() {
    for problem in control.plane.uninstallRoutes() { logger.warning("\(problem)") }
    tun.close()
  }
}

extension PuntTarget: CustomStringConvertible {
  public var description: String {
    switch self {
    case .udp(let e): "udp:\(e)"
    case .unix(let p): "unix:\(p)"
    }
  }
}
