// SPDX-License-Identifier: Apache-2.0
// `espd tunnel add|delete|list`: tunnels of a running espd, over its control socket.
import ArgumentParser
import Dataplane
import Forwarding

struct TunnelCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tunnel",
    abstract: "Add, delete or list the tunnels of a running espd (over its control socket).",
    subcommands: [Add.self, Delete.self, List.self]
  )

  struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Add a tunnel: a tunnel object as in the configuration file's \"tunnels\" list.",
      discussion: "Answers once the dataplane uses it. A tunnel of the same name must not exist.")
    @Option(name: .long, help: "The tunnel object: a JSON file, or - for standard input.")
    var json: String
    @OptionGroup var options: ControlOptions

    func run() throws {
      let tunnel = try ControlCall.readObject(json, what: "a tunnel object")
      _ = try ControlCall.run(ControlCall.request("add_tunnel", [("tunnel", tunnel)]), control: options.control)
    }
  }

  struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Delete a tunnel, its SAs (key memory wiped) and its routes.")
    @Argument(help: "The tunnel's name.")
    var name: String
    @OptionGroup var options: ControlOptions

    func run() throws {
      _ = try ControlCall.run(ControlCall.request("delete_tunnel", [("name", .string(name))]), control: options.control)
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List the tunnels: mode, peer, SAs (SPI, algorithm, state; never keys) and counters.")
    @Flag(name: .long, help: "Print the answer as one JSON object.")
    var json = false
    @OptionGroup var options: ControlOptions

    func run() throws {
      let answer = try ControlCall.run(ControlCall.request("list"), control: options.control)
      if json {
        printOutput(answer.jsonText)
        return
      }
      guard case .array(let tunnels)? = answer["tunnels"] else { return }
      for t in tunnels {
        func s(_ v: JSONValue?) -> String {
          switch v {
          case .string(let x)?: return x
          case .number(let x)?: return x
          case .bool(let b)?: return b ? "true" : "false"
          default: return "-"
          }
        }
        var inbound: [String] = []
        if case .array(let sas)? = t["inbound"] {
          inbound = sas.map { "\(s($0["spi"])) \(s($0["alg"])) \(s($0["state"]))" }
        }
        let o = t["outbound"]
        let c = t["counters"]
        printOutput(
          "\(s(t["name"])): \(s(t["mode"])) peer \(s(t["peer"]))\n"
            + "  inbound  \(inbound.joined(separator: ", "))\n"
            + "  outbound \(s(o?["spi"])) \(s(o?["alg"])) \(s(o?["state"])) seq \(s(o?["seq"]))\n"
            + "  packets in \(s(c?["packets_in"])) out \(s(c?["packets_out"])), bytes in \(s(c?["bytes_in"])) out \(s(c?["bytes_out"]))"
        )
      }
    }
  }
}

struct RekeyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rekey",
    abstract: "Rekey a tunnel without loss: add an inbound SA, switch the outbound SA, or both.",
    discussion: """
      The body is {"inbound":SA}, {"outbound":SA} or both (the inbound SA is added first). A hitless \
      rekey of both directions: add the new inbound SA on both ends, then switch the outbound SA on \
      both ends, then delete the old inbound SAs (espd sa delete SPI). Answers once the dataplane \
      uses the change.
      """)
  @Argument(help: "The tunnel's name.")
  var name: String
  @Option(name: .long, help: "The body: a JSON file, or - for standard input.")
  var json: String
  @OptionGroup var options: ControlOptions

  func run() throws {
    let body = try ControlCall.readObject(json, what: "{\"inbound\":SA} and/or {\"outbound\":SA}")
    guard case .object(let members) = body else { return }
    _ = try ControlCall.run(ControlCall.request("rekey", [("name", .string(name))] + members), control: options.control)
  }
}

struct SACommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sa",
    abstract: "Security associations of a running espd.",
    subcommands: [Delete.self]
  )

  struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Delete an inbound SA (after a rekey); its key memory is wiped.")
    @Argument(help: "The SPI, hex (0x…) or decimal.")
    var spi: String
    @OptionGroup var options: ControlOptions

    func run() throws {
      let digits = spi.hasPrefix("0x") || spi.hasPrefix("0X") ? String(spi.dropFirst(2)) : spi
      let isHex = spi.hasPrefix("0x") || spi.hasPrefix("0X") || digits.contains { $0.isLetter }
      guard let n = UInt32(digits, radix: isHex ? 16 : 10), n != 0 else {
        throw ValidationError("SPI: expected a non-zero 32-bit number, hex (0x…) or decimal, got '\(spi)'")
      }
      _ = try ControlCall.run(ControlCall.request("delete_sa", [("spi", .integer(n))]), control: options.control)
    }
  }
}
