// SPDX-License-Identifier: Apache-2.0
// `espd replay`: a capture through the packet paths offline, results to a raw-IP pcap.
import ArgumentParser
import Dataplane
import Forwarding

struct ReplayCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "replay",
    abstract: "Run a capture through the inbound and outbound paths offline (no TUN, no sockets).",
    discussion: """
      Reads IN (pcap or pcapng; Ethernet, Linux cooked SLL/SLL2 or raw IP). UDP to a `listen` \
      endpoint is classified (keepalive, IKE, ESP); ESP in UDP or raw ESP (IP protocol 50) with a \
      known inbound SPI is decapsulated; any other IP packet routed to a tunnel (remote_ts or \
      transport alias) is encapsulated. OUT gets raw IP packets (link type 101): decapsulated inner \
      packets as the TUN would receive them, encapsulated ones as outer IP + UDP + ESP. \
      Prints the count of every verdict (they add up to `packets`). A damaged input: the packets \
      before the damage are processed and written, the summary is printed, one line says where the \
      file is damaged, and the exit code is 1.
      """
  )

  @Option(name: .long, help: "The configuration file (its SAs start fresh: sequence numbers after `seq`).")
  var config: String

  @Option(name: [.customLong("in")], help: "The capture to read (pcap or pcapng).")
  var input: String

  @Option(name: [.customLong("out")], help: "The pcap to write (raw IP).")
  var output: String

  @Flag(help: "Print the summary as one JSON object.")
  var json = false

  func run() throws {
    let cfg = try ConfigFile.load(config)
    let replayer: Replayer
    do {
      replayer = try Replayer(config: cfg)
    } catch {
      for p in error.problems { printError("espd: \(p)") }
      throw ExitCode(2)
    }
    let summary: ReplaySummary
    do {
      summary = try replayer.run(input: input, output: output)
    } catch {
      printError("espd: \(error)")
      throw ExitCode(1)
    }
    print(json ? summary.json : summary.text)
    if let damage = summary.damage {
      printError("espd: \(input): \(damage)")
      throw ExitCode(1)
    }
  }
}
