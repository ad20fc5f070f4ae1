// SPDX-License-Identifier: Apache-2.0
// `espd run`: sets up the TUN (addresses, MTU, link), routes and policy rules, the listen sockets
// and the IKE punt channel from a configuration, runs a loop until SIGINT/SIGTERM, and tears down.
import ESP
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
  let core: LoopCore
  let control: ControlServer
  /// The backend actually in use (io_uring may fall back to mmsg).
  public private(set) var backend: IOBackend
  let offloads: OffloadOptions

  /// Sets everything up.
  /// - Throws: ``SystemError`` / ``NetlinkError`` with a one-line reason, or ``SATableError``.
  public init(
    config: Config, configPath: String? = nil, backend requested: IOBackend,
    offloads: OffloadOptions = OffloadOptions(),
    logger: Logger
  ) throws {
    self.logger = logger
    self.offloads = offloads
    // Signals first, before anything could start a thread that would receive them instead.
    signals = try SignalEvents()
    let table = try SATable(config: config, now: LoopCore.now())
    let mailbox = try Mailbox()
    // TUN offloads only with io_uring: the recvmmsg loop has no room to cut GSO packets into.
    let vnet = offloads.tun && requested == .uring
    tun = try TunDevice(name: config.tun.name, vnetHeader: vnet)
    if vnet {
      let base = TunDevice.offloadChecksum | TunDevice.offloadTSO4 | TunDevice.offloadTSO6
      let got = tun.setOffloads([base | TunDevice.offloadUSO4 | TunDevice.offloadUSO6, base, TunDevice.offloadChecksum])
      logger.info("tun offloads: \(TunDevice.describeOffloads(got))")
    }
    if !config.tun.addresses.contains(where: { $0.address.isV6 }) { tun.disableIPv6() }
    try tun.configure(mtu: config.tun.mtu)
    netlink = try Netlink()
    let index = tun.index
    for a in config.tun.addresses { try netlink.addAddress(a, index: index) }
    logger.info(
      "tun \(tun.name) up, mtu \(config.tun.mtu), addresses \(config.tun.addresses.map(\.description).joined(separator: ", "))"
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
    var sockets: [UDPSocket] = []
    do {
      for l in config.listen {
        sockets.append(try UDPSocket(listen: l, mark: RouteInstaller.fwmark))
        logger.info("listening on udp \(l) (ESP-in-UDP and IKE, RFC 3948)")
      }
      var punt: PuntChannel? = nil
      if let target = config.ikePunt {
        punt = try PuntChannel(target: target)
        logger.info("IKE datagrams punted to \(target)")
      }
      let plane = ControlPlane(
        config: config, table: table, routes: routes, mailbox: mailbox, logger: logger, configPath: configPath)
      control = try ControlServer(plane: plane, controlPath: config.control, metrics: config.metrics)
      logger.info("control socket \(config.control) (mode 0600)")
      if let m = config.metrics { logger.info("metrics on http://\(m)/metrics") }
      core = LoopCore(
        pipeline: Pipeline(table: table), tun: tun, sockets: sockets, punt: punt,
        keepaliveSeconds: config.natKeepaliveSeconds, mailbox: mailbox)
    } catch {
      routes.uninstall()
      tun.close()
      throw error
    }
    backend = requested
    logger.info("\(table.tunnels.count) tunnels, \(table.tunnels.reduce(0) { $0 + $1.inbound.count }) inbound SAs")
  }

  /// Runs the loop until SIGINT or SIGTERM, with the control thread beside it.
  /// - Parameter onStats: receives the stats JSON on SIGUSR1.
  public func run(onStats: @escaping (String) -> Void) throws {
    core.onStats = onStats
    try control.start()
    defer { control.stop() }
    if backend == .uring {
      do {
        let gso = offloads.udpGSO && core.sockets.allSatisfy(\.supportsGSO)
        let gro = offloads.udpGRO && core.sockets.allSatisfy { $0.enableGRO() }
        let loop = try URingLoop(core: core, signals: signals, udpGSO: gso, udpGRO: gro)
        logger.info("io: io_uring (\(loop.setupDescription))")
        loop.run()
        return
      } catch {
        logger.warning("io_uring unavailable (\(error)); falling back to recvmmsg/sendmmsg")
        backend = .mmsg
      }
    }
    if tun.offloads != 0 { tun.setOffloads([]) }  // no GSO packets or partial checksums from here on
    for s in core.sockets { _ = s.enableGRO(false) }  // recvmmsg takes one datagram per message
    logger.info("io: recvmmsg/sendmmsg")
    let loop = MMsgLoop(core: core, signals: signals)
    loop.run()
  }

  /// The counters as JSON.
  public var statsJSON: String { core.pipeline.snapshot(loop: core.loopCounters).statsJSON }

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
