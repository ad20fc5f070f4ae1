// SPDX-License-Identifier: Apache-2.0
// `espd keys --format wireshark`: the esp_sa lines Wireshark/tshark need to decrypt these SAs.
import ArgumentParser
import Dataplane
import ESP
import Forwarding

struct KeysCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "keys",
    abstract: "Print the SAs' keys in Wireshark's esp_sa table format (one line per SA).",
    discussion: """
      Each line: "IPv4","SRC","DST","0xSPI","<encryption>","0x<key>","<authentication>","0x<auth key>". \
      Save the lines as `esp_sa` in a Wireshark profile directory (e.g. ~/.config/wireshark/esp_sa) \
      and run tshark with `-o esp.enable_encryption_decode:TRUE`. Addresses that are not known \
      from the configuration (a responder's peer, a wildcard listen address) are `*`. \
      The output contains secret keys.
      """
  )

  @Option(name: .long, help: "The configuration file.")
  var config: String

  @Option(name: .long, help: "Output format: wireshark.")
  var format: KeysFormat = .wireshark

  func run() throws {
    let cfg = try ConfigFile.load(config)
    for line in WiresharkKeys.lines(cfg) { print(line) }
  }
}

/// Builds Wireshark `esp_sa` lines from a configuration.
enum WiresharkKeys {
  static func lines(_ config: Config) -> [String] {
    var out: [String] = []
    for t in config.tunnels {
      let family: Bool? = t.peer.map { $0.address.isV6 } ?? t.local.map { $0.isV6 }
      let local =
        t.local
        ?? config.listen.first { l in
          !(l.address == .v4(0) || l.address == .v6(0, 0)) && (family == nil || l.address.isV6 == family)
        }?.address
      let isV6 = family ?? local?.isV6 ?? false
      let peer = t.peer.map { "\($0.address)" } ?? "*"
      let here = local.map { "\($0)" } ?? "*"
      for sa in t.inbound { out.append(line(isV6: isV6, source: peer, destination: here, sa: sa)) }
      out.append(line(isV6: isV6, source: here, destination: peer, sa: t.outbound))
    }
    return out
  }

  static func line(isV6: Bool, source: String, destination: String, sa: SAConfig) -> String {
    let spi = String(sa.spi, radix: 16)
    let fields = [
      isV6 ? "IPv6" : "IPv4", source, destination, "0x" + String(repeating: "0", count: 8 - spi.count) + spi,
      sa.algorithm.wiresharkEncryption, sa.key.isEmpty ? "" : "0x" + Hex.encode(sa.key),
      sa.algorithm.wiresharkAuthentication, sa.authKey.isEmpty ? "" : "0x" + Hex.encode(sa.authKey),
    ]
    return fields.map { "\"\($0)\"" }.joined(separator: ",")
  }
}
