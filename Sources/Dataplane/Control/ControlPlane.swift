// SPDX-License-Identifier: Apache-2.0
// The control plane: the model of the tunnels in force (ControlModel), wired to what it changes
// outside itself (routes, the SPI steering map, the workers' change queues), plus SIGHUP reloads and
// SIGUSR1 prints. Runs on the control thread; never stops a worker.
import CLinux
import ESP
import Forwarding
import Logging

#if canImport(Glibc)
  import Glibc
#endif

/// Owned by the control thread (after start-up).
final class ControlPlane {
  let model: ControlModel
  private let routes: RouteInstaller
  let mailbox: Mailbox
  let workers: WorkerSet
  let logger: Logger
  /// Where the configuration came from (SIGHUP re-reads it); nil: reload is not possible.
  let configPath: String?
  /// Whether the metrics list every tunnel's series (`metrics_per_tunnel`).
  var metricsPerTunnel: Bool { model.base.metricsPerTunnel }

  /// The settings in force (its `tunnels` are not kept: see ``model``).
  var config: Config { model.base }

  init(
    model: ControlModel, routes: RouteInstaller, mailbox: Mailbox, workers: WorkerSet, logger: Logger,
    configPath: String?
  ) {
    self.model = model
    self.routes = routes
    self.mailbox = mailbox
    self.workers = workers
    self.logger = logger
    self.configPath = configPath
    model.effects = ControlEffects(
      addRoutes: { [routes] prefixes in
        do throws(NetlinkError) {
          try routes.add(prefixes)
          return nil
        } catch {
          return "\(error)"
        }
      },
      removeRoutes: { [routes, logger] prefixes in
        for problem in routes.remove(prefixes) { logger.warning("\(problem)") }
      },
      steer: { [workers] spi, owner in
        guard let steering = workers.steering else { return }
        if let owner { steering.set(spi, worker: owner) } else { steering.remove(spi) }
      },
      push: { [workers] all, perWorker in workers.push(all, perWorker) },
      settle: { [workers, logger] in
        if !workers.settle() { logger.warning("a worker did not take its changes within 5 seconds") }
      })
  }

  /// Applies a change request. The answer may go as soon as this returns: every worker applies the
  /// change before it processes any packet it collects afterwards (ChangeQueue.swift).
  /// - Returns: the answer's members after `"ok":true` (``ControlModel/apply(_:now:)``).
  func change(_ request: ControlRequest) -> Result<[(key: String, value: JSONValue)], ControlError> {
    if mailbox.loopStopped { return .failure(ControlError("the dataplane is shutting down")) }
    return model.apply(request, now: LoopCore.now())
  }

  /// Every counter: the workers' published ones summed, and (with `tunnels`) each tunnel's.
  func snapshot(tunnels: Bool = true) -> StatsSnapshot {
    var s = workers.snapshot(model: model, tunnels: tunnels)
    s.perTunnelMetrics = metricsPerTunnel
    s.tunnelCount = model.count
    s.inboundSACount = model.inboundSPIs.count
    return s
  }

  /// SIGHUP: re-reads the configuration file and puts in force only what changed (tunnels added
  /// over the control socket and not in the file are removed). Changes to the settings of
  /// ``Config/restartOnly`` need a restart and are reported, not applied.
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
    let config = self.config
    if !config.restartOnlyChanges(in: new).isEmpty {
      logger.warning("\(Config.restartOnlyWarning)")
      new = config.keepingRestartOnly(of: new)
    }
    let keepalive = new.natKeepaliveSeconds != config.natKeepaliveSeconds
    switch model.reload(new, now: LoopCore.now()) {
    case .success(let summary):
      Sys.trimHeap()  // the parsed file's heap
      logger.info("reloaded \(configPath): \(model.count) tunnels (\(summary))")
      if keepalive { logger.info("reload: nat_keepalive_seconds is now \(new.natKeepaliveSeconds)") }
    case .failure(let e): logger.error("reload failed: \(e)")
    }
  }

  /// Receives the stats JSON when SIGUSR1 asks for it (set before the control thread starts).
  var onStats: (String) -> Void = { _ in }

  /// SIGUSR1: prints every worker's counters, summed.
  func printStats() { onStats(snapshot().statsJSON) }

  /// Removes the routes and rules (at exit).
  func uninstallRoutes() -> [String] { routes.uninstall() }
}
