// SPDX-License-Identifier: Apache-2.0
// `espd stats` and `espd events`: counters and lifetime events of a running espd.
import ArgumentParser
import Dataplane
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

struct StatsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "stats",
    abstract: "Print the counters of a running espd: global and per tunnel, every drop reason.")
  @Flag(name: .long, help: "Print one JSON object ({\"ok\":true,\"stats\":{…}}) per sample.")
  var json = false
  @Option(name: .long, help: "Print a sample every SECONDS seconds until interrupted.")
  var watch: Int?
  @OptionGroup var options: ControlOptions

  func validate() throws {
    if let w = watch, w < 1 { throw ValidationError("--watch: expected at least 1 second, got \(w)") }
  }

  func run() throws {
    while true {
      let answer = try ControlCall.run(ControlCall.request("stats"), control: options.control)
      if json {
        printOutput(answer.jsonText)
      } else {
        printOutput(StatsCommand.text(answer["stats"] ?? .null))
      }
      guard let watch else { return }
      sleep(UInt32(watch))
    }
  }

  /// The stats object as text: global counters, non-zero drops, then a line per tunnel.
  static func text(_ stats: JSONValue) -> String {
    guard case .object(let members) = stats else { return "" }
    var lines: [String] = []
    var globals: [String] = []
    for m in members {
      switch m.value {
      case .number(let n): globals.append("\(m.key) \(n)")
      case .object(let drops) where m.key == "drops":
        let nonzero = drops.filter { $0.value != .number("0") }.map { "\($0.key) \($0.value.jsonText)" }
        lines.append("drops: " + (nonzero.isEmpty ? "none" : nonzero.joined(separator: ", ")))
      default: break
      }
    }
    lines.insert(globals.joined(separator: ", "), at: 0)
    if case .array(let tunnels)? = stats["tunnels"] {
      for t in tunnels {
        guard case .string(let name)? = t["name"] else { continue }
        func n(_ k: String) -> String { t[k]?.jsonText ?? "0" }
        var line = "tunnel \(name): peer \(t["peer"].map { $0 == .null ? "none" : $0.jsonText } ?? "none")"
        line += ", in \(n("packets_in")) packets / \(n("bytes_in")) bytes, out \(n("packets_out")) / \(n("bytes_out"))"
        line += ", endpoint changes \(n("endpoint_changes"))"
        if case .object(let drops)? = t["drops"] {
          let nonzero = drops.filter { $0.value != .number("0") }.map { "\($0.key) \($0.value.jsonText)" }
          if !nonzero.isEmpty { line += ", drops: " + nonzero.joined(separator: ", ") }
        }
        lines.append(line)
      }
    }
    return lines.joined(separator: "\n")
  }
}

struct EventsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "events",
    abstract: "Print SA lifetime events (soft/hard expiry, sequence exhaustion) as JSON lines until interrupted.",
    discussion: """
      Events go to standard output, one JSON object per line. Once espd has accepted the subscription \
      a line saying so goes to standard error, so a script can wait for it before it causes an event.
      """)
  @OptionGroup var options: ControlOptions

  func run() throws {
    do {
      let client = try ControlClient(path: options.control, timeoutSeconds: 0)
      let answer = try client.request(ControlCall.request("subscribe").jsonText)
      guard answer.contains("\"ok\":true") else {
        printError("espd: \(answer)")
        throw ExitCode(2)
      }
      printError("espd: subscribed to the events of \(options.control)")
      while let line = try client.readLine() { printOutput(line) }
    } catch let e as SystemError {
      printError("espd: \(e)")
      throw ExitCode(1)
    }
  }
}
