// SPDX-License-Identifier: Apache-2.0
// `espd check`: validates a configuration file and prints what espd would do with it (never keys).
import ArgumentParser
import Dataplane
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

struct Check: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Validate a configuration file and print what espd would do with it.",
    discussion: """
      Exits 0 if the configuration is valid, after a summary of the listen sockets, the TUN device \
      and each tunnel with its SPIs and algorithms (never keys). Otherwise prints every problem, one \
      line each (`espd: tunnels[1].inbound[0].key: expected 20 bytes (16-byte key + 4-byte salt) for \
      aes128gcm16, got 16`), and exits 2.
      """
  )

  @Option(name: .long, help: "The configuration file (JSON, see INTERFACE.md).")
  var config: String?

  func run() throws {
    guard let config else {
      printError("espd: check: missing --config FILE")
      throw ExitCode(2)
    }
    for line in Check.summary(of: try ConfigFile.load(config)) { print(line) }
  }

  /// What espd would do with a valid configuration, one line per item; SPIs and algorithms, never keys.
  static func summary(of c: Config) -> [String] {
    var out: [String] = []
    out.append("listen: " + c.listen.map(\.description).joined(separator: ", "))
    let addresses =
      c.tun.addresses.isEmpty ? "no addresses" : c.tun.addresses.map(\.description).joined(separator: ", ")
    out.append("tun: \(c.tun.name), mtu \(c.tun.mtu), \(addresses)")
    out.append(
      "nat keepalive: " + (c.natKeepaliveSeconds == 0 ? "off" : "every \(c.natKeepaliveSeconds) s to peers behind NAT"))
    switch c.ikePunt {
    case nil: out.append("ike: no punt target; IKE datagrams are counted and dropped")
    case .udp(let e): out.append("ike: punt to udp \(e)")
    case .unix(let p): out.append("ike: punt to unix \(p)")
    }
    if let local = c.ikePuntLocal { out.append("ike: espd's end of the punt channel: \(local)") }
    if !c.ikeListen.isEmpty {
      out.append("ike: IKE only (no marker) on udp " + c.ikeListen.map(\.description).joined(separator: ", "))
    }
    out.append("control: \(c.control)")
    out.append("metrics: " + (c.metrics.map { "http://\($0)/metrics" } ?? "off"))
    if let pool = c.transportAliasPool { out.append("transport alias pool: \(pool)") }
    let l = c.limits
    out.append(
      "limits: \(l.tunnels) tunnels, \(l.sas) SAs, \(l.inboundSAsPerTunnel) inbound SAs a tunnel, "
        + "\(l.controlConnections) control connections, IKE queue \(l.ikeQueueBytes) bytes, \(l.ikePerSecond) IKE/s, "
        + "\(l.ikePerSourcePerSecond) IKE/s per source")
    out.append("tunnels: \(c.tunnels.count)")
    for t in c.tunnels {
      var head = "  \(t.name): \(t.mode.rawValue) mode, peer " + (t.peer.map(\.description) ?? "learned from traffic")
      if let local = t.local { head += ", local \(local)" }
      out.append(head)
      if !t.remoteTS.isEmpty { out.append("    remote_ts: " + t.remoteTS.map(\.description).joined(separator: ", ")) }
      if let alias = t.alias { out.append("    alias: \(alias)") }
      for sa in t.inbound { out.append("    inbound:  " + describe(sa, inbound: true)) }
      out.append("    outbound: " + describe(t.outbound, inbound: false))
    }
    let inbound = c.tunnels.reduce(0) { $0 + $1.inbound.count }
    out.append(
      "ok: \(c.tunnels.count) tunnel\(c.tunnels.count == 1 ? "" : "s"), \(inbound) inbound SA\(inbound == 1 ? "" : "s")"
    )
    return out
  }

  private static func describe(_ sa: SAConfig, inbound: Bool) -> String {
    let h = String(sa.spi, radix: 16)
    var s = "spi 0x\(String(repeating: "0", count: 8 - h.count))\(h) \(sa.algorithm.rawValue)"
    if sa.esn { s += ", esn" }
    if inbound {
      s += sa.replayWindow == 0 ? ", no anti-replay" : ", replay window \(sa.replayWindow)"
      if sa.replaySequence != 0 { s += ", replay_seq \(sa.replaySequence)" }
    } else if sa.sequenceNumber != 0 {
      s += ", seq \(sa.sequenceNumber)"
    }
    if let l = sa.lifetime {
      let parts = [
        ("bytes", l.bytesSoft, l.bytesHard), ("packets", l.packetsSoft, l.packetsHard),
        ("seconds", l.secondsSoft, l.secondsHard),
      ].compactMap { name, soft, hard -> String? in
        guard soft != nil || hard != nil else { return nil }
        return "\(name) \(soft.map(String.init) ?? "-")/\(hard.map(String.init) ?? "-")"
      }
      if !parts.isEmpty { s += ", lifetime (soft/hard) " + parts.joined(separator: " ") }
    }
    return s
  }
}
