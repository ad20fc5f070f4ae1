// SPDX-License-Identifier: Apache-2.0
// `bench control`: the control path of a running espd at scale. `config` writes a configuration of N
// responder tunnels; `wait` waits until espd answers on its control socket; `run` times hitless
// rekeys (one request at a time and pipelined), tunnel add/delete churn and `stats` against it.
// tests/live/test_bench_control.py (pytest -m bench -k bench-control) drives all three in a network namespace.
import ArgumentParser
import Dataplane
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// `bench control`: groups the three subcommands.
struct ControlCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "control",
    abstract: "Control path at scale: rekeys, tunnel churn and stats against a running espd.",
    discussion: """
      `config` writes the configuration (tunnels t1…tN), `espd run` loads it, `run` measures; \
      tests/live/test_bench_control.py (pytest -m bench -k bench-control) does all of it, with start-up time and memory per tunnel.
      """,
    subcommands: [ControlConfigCommand.self, ControlWaitCommand.self, ControlRunCommand.self]
  )
}

/// `bench control config`: the configuration file.
struct ControlConfigCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "config",
    abstract: "Write an espd configuration with N responder tunnels t1…tN (aes128gcm16, one SA each way).",
    discussion: """
      Tunnel t<i> (tunnel mode, the default): remote_ts 2001:db8:<i>>16>:<i&0xffff>::1/128 (hex), \
      inbound SPI 0x10000000+i, outbound SPI 0x20000000+i, no peer. TUN 198.51.100.1/24 and \
      2001:db8::1/32, mtu 1400; listen 127.0.0.1:4500. `limits` is set when N plus 100,000 added \
      tunnels would pass espd's default.
      """)

  @Option(help: "Tunnels (0 for a baseline configuration without any).")
  var tunnels: Int

  @Option(help: "The configuration file to write.")
  var out: String

  @Option(help: "The control socket path espd is to open.")
  var control: String = "/run/espd/control.sock"

  @Option(help: "The TUN device's name.")
  var tun: String = "espd0"

  /// Tunnel numbers stay inside the SPI ranges (0x10000000 + i, 0x20000000 + i).
  func validate() throws {
    guard (0...10_000_000).contains(tunnels) else { throw ValidationError("--tunnels: expected 0...10000000") }
  }

  func run() throws {
    let t0 = nanoseconds()
    switch ControlConfigFile.write(path: out, tunnels: tunnels, control: control, tun: tun) {
    case .success(let bytes):
      let s = Double(nanoseconds() - t0) / 1e9
      print("wrote \(out): \(tunnels) tunnels, \(bytes) bytes in \(JSONValue.double(s, digits: 2).text) s")
      if bytes > ConfigParser.maxFileBytes {
        var line = "bench: warning: \(bytes) bytes, more than espd reads (\(ConfigParser.maxFileBytes))\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
      }
    case .failure(let e):
      benchFailure("\(e)")
    }
  }
}

/// `bench control wait`: start-up is over when the control socket answers.
struct ControlWaitCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "wait",
    abstract: "Wait until espd answers {\"op\":\"subscribe\"} on its control socket; print the seconds waited.",
    discussion: """
      Retries the connection every 2 ms. The socket exists before espd's control thread runs; the \
      answer comes once it does (tunnels loaded, routes installed). Exit 1 if espd (--pid) exits \
      first or --timeout passes.
      """)

  @Option(help: "The control socket path.")
  var control: String

  @Option(help: "espd's PID: stop waiting when it has exited.")
  var pid: Int32?

  @Option(help: "Seconds to wait at most.")
  var timeout: Double = 600

  func run() throws {
    let t0 = nanoseconds()
    let deadline = t0 + UInt64(timeout * 1e9)
    while true {
      if let pid, ControlWaitCommand.exited(pid) { benchFailure("espd (pid \(pid)) exited before answering") }
      if nanoseconds() > deadline { benchFailure("no answer on \(control) within \(timeout) s") }
      guard let socket = try? LineSocket(path: control, bufferBytes: 1 << 17) else {
        usleep(2000)
        continue
      }
      let request: StaticString = "{\"op\":\"subscribe\"}\n"
      guard socket.send(request.utf8Start, request.utf8CodeUnitCount), let line = socket.readLine() else {
        usleep(2000)  // espd went away between connect and answer (or is restarting): try again
        continue
      }
      guard line.isOKAnswer else { benchFailure("subscribe refused: \(line.reportText())") }
      print(JSONValue.double(Double(nanoseconds() - t0) / 1e9, digits: 3).text)
      return
    }
  }

  /// Whether process `pid` is gone or a zombie (its parent, the script, may not have reaped it yet).
  static func exited(_ pid: Int32) -> Bool {
    if kill(pid, 0) != 0 && errno == ESRCH { return true }
    guard let stat = BenchEnvironment.readFile("/proc/\(pid)/stat"), let paren = stat.lastIndex(of: ")") else {
      return true
    }
    let state = stat[stat.index(after: paren)...].drop(while: { $0 == " " }).first
    return state == "Z" || state == "X"
  }
}

/// `bench control run`: the measured cases.
struct ControlRunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Time rekeys, tunnel churn and stats on a running espd loaded by `bench control config`.",
    discussion: """
      rekey_serial: --steps hitless rekeys (rekey inbound, rekey outbound, delete_sa of the old \
      inbound SPI) round-robin over t1…tN, one request at a time; rekey_pipelined: as many more \
      with up to --depth requests outstanding; tunnel_churn_serial: --steps/5 add_tunnel + \
      delete_tunnel pairs; stats_serial: 20 --stats-request lines. Each case has its own connection. \
      SPIs are tracked from the configuration's: run it once per espd start. An error answer \
      fails the run (exit 1) unless --allow-errors.
      """)

  @Option(help: "The control socket path.")
  var control: String

  @Option(help: "Tunnels in espd's configuration (as given to `bench control config`).")
  var tunnels: Int

  @Option(help: "Rekey steps per rekey case (three requests each).")
  var steps: Int = 5000

  @Option(help: "Requests outstanding at most in rekey_pipelined.")
  var depth: Int = 64

  @Option(help: "The request line stats_serial sends.")
  var statsRequest: String = "{\"op\":\"stats\"}"

  @Flag(help: "Print only the JSON lines.")
  var json = false

  @Flag(help: "Report error answers but exit 0.")
  var allowErrors = false

  @Flag(
    help: """
      Spin on non-blocking reads for answers instead of sleeping in read(2): leaves this client's \
      wake-up out of the answer times (costs a CPU).
      """)
  var busyPoll = false

  /// Bounds that keep the SPI ranges and the churn's IPv6 group apart.
  func validate() throws {
    guard tunnels >= 1 else { throw ValidationError("--tunnels: expected at least 1") }
    guard (1...50_000_000).contains(steps) else { throw ValidationError("--steps: expected 1...50000000") }
    guard (1...65_536).contains(depth) else { throw ValidationError("--depth: expected 1...65536") }
    guard !statsRequest.isEmpty && !statsRequest.utf8.contains(10) else {
      throw ValidationError("--stats-request: expected one line")
    }
    guard steps / 5 < 0x1_0000 else { throw ValidationError("--steps: at most 327679 (churn names one IPv6 group)") }
  }

  func run() throws {
    if !json { BenchEnvironment.printHeader() }
    var plan = RekeyPlan(tunnels: tunnels)
    var rows: [ControlReportRow] = []
    var errors = 0

    func connect() -> LineSocket {
      do {
        let s = try LineSocket(path: control)
        s.busyPoll = busyPoll
        return s
      } catch {
        benchFailure("\(error)")
      }
    }
    func report(_ row: ControlReportRow) {
      printJSONLine(row.fields(tunnels: tunnels) + [("read", .string(busyPoll ? "busy_poll" : "blocking"))])
      if let e = row.result.firstError {
        var line = "bench: \(row.name): \(row.result.errors) errors; first: \(e)\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
      }
      errors += row.result.errors
      rows.append(row)
    }

    let serialLines = plan.lines(steps: steps)
    report(
      ControlReportRow(
        name: "rekey_serial", unit: "steps", units: steps, result: ControlCases.serial(connect(), serialLines)))
    let pipelinedLines = plan.lines(steps: steps)
    report(
      ControlReportRow(
        name: "rekey_pipelined", unit: "steps", units: steps, depth: depth,
        result: ControlCases.pipelined(connect(), pipelinedLines, depth: depth)))
    let pairs = max(steps / 5, 1)
    report(
      ControlReportRow(
        name: "tunnel_churn_serial", unit: "pairs", units: pairs,
        result: ControlCases.serial(connect(), churnLines(pairs: pairs))))
    let stats = 20
    report(
      ControlReportRow(
        name: "stats_serial", unit: "answers", units: stats,
        result: ControlCases.serial(connect(), RequestLines.repeated(statsRequest, stats))))

    if !json { ControlReportRow.printTable(rows, tunnels: tunnels) }
    if errors > 0 && !allowErrors { throw ExitCode(1) }
  }
}

/// One case's figures: its JSON line and its row of the human table.
struct ControlReportRow {
  let name: String
  /// What one unit of work is (`steps`, `pairs`, `answers`) and how many the case did.
  let unit: String
  let units: Int
  var depth: Int? = nil
  let result: ControlCaseResult

  /// The units completed: all of them, or as many as were answered before the connection ended.
  var completed: Int { result.requests == 0 ? 0 : units * result.answered / result.requests }

  /// The case's JSON line: counts, rates, answer-time quantiles in ms, errors (and the first one).
  func fields(tunnels: Int) -> [(String, JSONValue)] {
    let r = result
    let sorted = r.sortedLatencies()
    var f: [(String, JSONValue)] = [("case", .string(name)), ("tunnels", .int(tunnels)), (unit, .int(units))]
    if let depth { f.append(("depth", .int(depth))) }
    f += [
      ("requests", .int(r.requests)), ("answered", .int(r.answered)), ("seconds", .double(r.seconds, digits: 4)),
      ("\(unit)_per_s", .double(r.rate(completed), digits: 1)),
      ("requests_per_s", .double(r.rate(r.answered), digits: 1)),
      ("p50_ms", .double(ControlCaseResult.quantileMs(sorted, 0.5), digits: 4)),
      ("p99_ms", .double(ControlCaseResult.quantileMs(sorted, 0.99), digits: 4)),
      ("max_ms", .double(ControlCaseResult.quantileMs(sorted, 1), digits: 4)),
      ("answer_bytes_avg", .double(r.answered == 0 ? 0 : Double(r.answerBytes) / Double(r.answered), digits: 0)),
      ("errors", .int(r.errors)),
    ]
    if let e = r.firstError { f.append(("first_error", .string(e.replacingOccurrences(of: "\\", with: "\\\\")))) }
    return f
  }

  /// The human table after the JSON lines.
  static func printTable(_ rows: [ControlReportRow], tunnels: Int) {
    func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
    func num(_ d: Double, _ digits: Int) -> String { JSONValue.double(d, digits: digits).text }
    print("")
    print("control path, \(tunnels) tunnels")
    print(
      "case".leftAligned(24) + pad("units", 8) + pad("units/s", 11) + pad("req/s", 11) + pad("p50 ms", 10)
        + pad("p99 ms", 10) + pad("max ms", 10) + pad("errors", 8))
    for row in rows {
      let sorted = row.result.sortedLatencies()
      let name = row.name + (row.depth.map { " (D=\($0))" } ?? "")
      print(
        name.leftAligned(24) + pad("\(row.units)", 8) + pad(num(row.result.rate(row.completed), 1), 11)
          + pad(num(row.result.rate(row.result.answered), 1), 11)
          + pad(num(ControlCaseResult.quantileMs(sorted, 0.5), 3), 10)
          + pad(num(ControlCaseResult.quantileMs(sorted, 0.99), 3), 10)
          + pad(num(ControlCaseResult.quantileMs(sorted, 1), 3), 10) + pad("\(row.result.errors)", 8))
    }
  }
}

extension String {
  /// Left-aligned in `width` columns (ASCII).
  func leftAligned(_ width: Int) -> String { self + String(repeating: " ", count: max(1, width - count)) }
}
