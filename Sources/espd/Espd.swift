// SPDX-License-Identifier: Apache-2.0
// The `espd` command: argument parsing and dispatch to the subcommands. Thin by design.
import ArgumentParser

@main
struct Espd: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "espd",
    abstract: "A userspace ESP-in-UDP (RFC 4303, RFC 3948) IPsec dataplane.",
    discussion: """
      espd moves ESP packets between a TUN device and UDP sockets, doing the encapsulation and \
      decapsulation itself; an IKE daemon negotiates the SAs and drives a running espd over its \
      control socket (tunnel, rekey, sa, stats, events); SIGHUP reloads the configuration file. \
      See README.md for what works today.
      """,
    version: EspdVersion.string,
    subcommands: [
      Run.self, Check.self, ReplayCommand.self, KeysCommand.self, TunnelCommand.self, RekeyCommand.self,
      SACommand.self, StatsCommand.self, EventsCommand.self,
    ]
  )
}

extension Espd {
  /// Runs the command; usage errors exit 2 (INTERFACE.md), not swift-argument-parser's 64.
  static func main() {
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      if exitCode(for: error) == .validationFailure {
        printError(fullMessage(for: error))
        Self.exit(withError: ExitCode(2))
      }
      Self.exit(withError: error)
    }
  }
}

/// The version printed by `espd --version`.
enum EspdVersion {
  static let string = "0.1.0"
}
