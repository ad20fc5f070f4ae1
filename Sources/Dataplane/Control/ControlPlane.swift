// SPDX-License-Identifier: Apache-2.0
// The control plane's state and its changes: the configuration in force, the snapshot last
// published, the routes. Every change builds a new snapshot here, off the packet loop's thread,
// installs the routes it adds, hands the snapshot to the loop, then removes stale routes.
import ESP
import Logging

/// Owned by the control thread (after start-up).
final class ControlPlane {
  private(set) var config: Config
  /// The snapshot the loop uses (the last one published).
  private(set) var table: SATable
  private var routes: RouteInstaller
  let mailbox: Mailbox
  let logger: Logger
  /// Where the configuration came from (SIGHUP re-reads it); nil: reload is not possible.
  let configPath: String?

  init(config: Config, table: SATable, routes: RouteInstaller, mailbox: Mailbox, logger: Logger, configPath: String?) {
    self.config = config
    self.table = table
    self.routes = routes
    self.mailbox = mailbox
    self.logger = logger
    self.configPath = configPath
  }

  /// Applies a change request; the answer is sent only once the loop uses the new snapshot.
  func change(_ request: ControlRequest) -> Result<Void, ControlError> {
    switch ControlState.apply(request, to: config) {
    case .failure(let e): return .failure(e)
    case .success(let new): return commit(new)
    }
  }

  /// Puts `new` in force: SAs whose configuration is unchanged keep their state, tunnels keep
  /// theirs by name; routes are added before the switch and stale ones removed after it.
  func commit(_ new: Config) -> Result<Void, ControlError> {
    let next: SATable
    do {
      next = try SATable(config: new, previous: (table, config), now: LoopCore.now())
    } catch {
      return .failure(ControlError(error.problems.joined(separator: "; ")))
    }
    let installer = routes.successor(for: new)
    do {
      try installer.install()
    } catch {
      installer.removeStale(keeping: routes)
      return .failure(ControlError("cannot install routes: \(error)"))
    }
    do {
      try mailbox.publish(next)
    } catch {
      installer.removeStale(keeping: routes)
      return .failure(ControlError("\(error)"))
    }
    for problem in routes.removeStale(keeping: installer) { logger.warning("\(problem)") }
    routes = installer
    var old = config
    config = new
    table = next
    ControlPlane.wipeRemoved(&old, keeping: new)
    return .success(())
  }

  /// Wipes, in place, the key copies of the SAs `old` has and `new` does not. In place matters:
  /// `old` is the only owner of those arrays by now, so no copy is made first.
  static func wipeRemoved(_ old: inout Config, keeping new: Config) {
    let newOutbound = Set(new.tunnels.map(\.outbound.spi))
    let newInbound = Set(new.tunnels.flatMap { $0.inbound.map(\.spi) })
    for i in old.tunnels.indices {
      for j in old.tunnels[i].inbound.indices where !newInbound.contains(old.tunnels[i].inbound[j].spi) {
        old.tunnels[i].inbound[j].wipeKeys()
      }
      if !newOutbound.contains(old.tunnels[i].outbound.spi) { old.tunnels[i].outbound.wipeKeys() }
    }
  }

  /// SIGHUP: re-reads the configuration file and puts its tunnels in force (tunnels added over the
  /// control socket and not in the file are removed). Changes to `listen`, `tun`, `ike`, `control`
  /// or `metrics` need a restart and are reported, not applied.
  func reload() {
    guard let configPath else { return }
    let bytes: [UInt8]
    switch FileIO.read(configPath, limit: ConfigParser.maxFileBytes) {
    case .success(let b): bytes = b
    case .failure(let e):
      logger.error("reload failed: \(e)")
      return
    }
    var new: Config
    switch ConfigParser.parse(bytes: bytes) {
    case .success(let c): new = c
    case .failure(let errors):
      logger.error("reload failed: \(errors.problems.joined(separator: "; "))")
      return
    }
    if new.listen != config.listen || new.tun.name != config.tun.name || new.tun.addresses != config.tun.addresses
      || new.tun.mtu != config.tun.mtu || new.ikePunt != config.ikePunt || new.control != config.control
      || new.metrics != config.metrics || new.limits.ikeQueueBytes != config.limits.ikeQueueBytes
      || new.limits.ikePerSecond != config.limits.ikePerSecond
      || new.limits.ikePerSourcePerSecond != config.limits.ikePerSourcePerSecond
    {
      logger.warning(
        "reload: changes to listen, tun, ike, control, metrics or the IKE limits need a restart; applying the tunnels and the other limits only"
      )
      let (tunnels, limits) = (new.tunnels, new.limits)
      new = config
      new.tunnels = tunnels
      new.limits.tunnels = limits.tunnels
      new.limits.sas = limits.sas
      new.limits.inboundSAsPerTunnel = limits.inboundSAsPerTunnel
      new.limits.controlConnections = limits.controlConnections
    }
    switch commit(new) {
    case .success: logger.info("reloaded \(configPath): \(table.tunnels.count) tunnels")
    case .failure(let e): logger.error("reload failed: \(e)")
    }
  }

  /// Receives the stats JSON when SIGUSR1 asks for it (set before the control thread starts).
  var onStats: (String) -> Void = { _ in }

  /// SIGUSR1: prints every worker's counters, summed.
  func printStats() {
    do throws(Mailbox.Failure) {
      onStats(try mailbox.stats().statsJSON)
    } catch {
      logger.warning("SIGUSR1: \(error)")
    }
  }

  /// Removes the routes and rules (at exit).
  func uninstallRoutes() -> [String] { routes.uninstall() }
}
