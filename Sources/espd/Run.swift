// SPDX-License-Identifier: Apache-2.0
// `espd run`: the dataplane in the foreground, and `--selftest`.
import ArgumentParser
import Dataplane
import ESP
import Forwarding
import Logging

#if canImport(Glibc)
  import Glibc
#endif

struct Run: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the dataplane in the foreground until SIGINT or SIGTERM.",
    discussion: """
      With --selftest, runs the built-in known-answer tests (RFC 7634, draft-mcgrew-gcm-test-01, \
      RFC 3602) and anti-replay tables, prints each result, and exits 0 if all pass, 1 otherwise.
      """
  )

  @Option(name: .long, help: "The configuration file (JSON, see INTERFACE.md).")
  var config: String?

  @Option(
    name: .long,
    help: """
      Worker loops, 1 to 64 (one per core is the sensible most). Each has its own io_uring, TUN queue \
      and SO_REUSEPORT socket, and owns a share of the tunnels: every packet of a tunnel is handled by \
      its owner (others hand it over), so each SA has a single writer. io_uring only.
      """)
  var workers: Int = 1

  @Option(name: .long, help: "I/O backend: uring (io_uring; falls back to mmsg if the kernel refuses) or mmsg.")
  var io: IOBackend = .uring

  @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
  var logLevel: LogLevel = .info

  @Option(name: .long, help: "Log format: text or json.")
  var logFormat: LogFormat = .text

  @Option(
    name: .long,
    help: "TUN offloads (GSO packets cut into segments before sealing, checksum offload): on or off. io_uring only.")
  var tunOffload: Switch = .on

  @Option(name: .long, help: "UDP GSO (one sendmsg per run of same-size ESP datagrams to a peer): on or off.")
  var udpGso: Switch = .on

  @Option(name: .long, help: "UDP GRO (one receive carries many ESP datagrams of one peer): on or off. io_uring only.")
  var udpGro: Switch = .on

  @Flag(name: .long, help: "Run the built-in known-answer and replay tests, then exit.")
  var selftest = false

  func run() throws {
    if selftest {
      let results = ESPSelfTest.run()
      for r in results { print("\(r.passed ? "ok  " : "FAIL") \(r.name)") }
      let failed = results.filter { !$0.passed }.count
      print("selftest: \(results.count - failed) passed, \(failed) failed")
      throw ExitCode(failed == 0 ? 0 : 1)
    }
    #if DEBUG
      // Debug builds check themselves before touching the network (the kernel's mod_init selftests).
      guard ESPSelfTest.passes() else {
        printError("espd: built-in self-test failed; refusing to start (run `espd run --selftest`)")
        throw ExitCode(1)
      }
    #endif
    guard let config else {
      throw ValidationError("missing --config FILE (or --selftest)")
    }
    guard (1...64).contains(workers) else { throw ValidationError("--workers: expected 1 to 64, got \(workers)") }
    let json = logFormat == .json
    let level = logLevel.level
    LoggingSystem.bootstrap { label in
      var h: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
      h.logLevel = level
      return h
    }
    let logger = Logger(label: "espd")
    let runtime: Runtime
    let loaded = try ConfigFile.load(config)
    do {
      // The configuration is not kept here: the control plane keeps what is in force.
      runtime = try Runtime(
        config: consume loaded, configPath: config, backend: io,
        offloads: OffloadOptions(tun: tunOffload.isOn, udpGSO: udpGso.isOn, udpGRO: udpGro.isOn),
        workers: workers, logger: logger)
    } catch {
      printError("espd: \(error)")
      throw ExitCode(1)
    }
    logger.info(
      "espd \(EspdVersion.string) running (SIGUSR1 prints the counters; SIGHUP reloads the config; SIGINT/SIGTERM stop)"
    )
    do {
      try runtime.run { printOutput($0) }
    } catch {
      printError("espd: \(error)")
      runtime.shutdown()
      throw ExitCode(1)
    }
    runtime.shutdown()
    printOutput(runtime.statsJSON)
    logger.info("stopped")
  }
}

/// Writes one line to standard output at once (unbuffered: a stats line must not wait for exit).
func printOutput(_ line: String) {
  var s = line + "\n"
  s.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
}

/// Writes one line to standard error.
func printError(_ line: String) {
  var s = line + "\n"
  s.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
