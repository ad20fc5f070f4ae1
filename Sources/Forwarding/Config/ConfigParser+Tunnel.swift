// SPDX-License-Identifier: Apache-2.0
// One tunnel object of the configuration (or of an `add_tunnel` request): its own fields and rules.
import ESP

/// What the cross-tunnel checks need to know of a tunnel, even one with problems of its own,
/// so that one bad field does not hide a duplicate SPI or prefix elsewhere.
struct TunnelDraft {
  var path: String
  var name: String?
  var mode: TunnelMode?
  var remoteTS: [(prefix: Prefix, path: String)] = []
  /// The explicit alias, or the one allocated from the pool.
  var alias: IPAddress?
  /// Whether `alias` was given (even if invalid): such a tunnel takes nothing from the pool.
  var aliasGiven = false
  var inboundSPIs: [(spi: UInt32, path: String)] = []
  var outboundSPI: (spi: UInt32, path: String)?
  /// The whole tunnel, when it had no problem of its own.
  var tunnel: TunnelConfig?

  init(path: String) {
    self.path = path
  }
}

extension ConfigParser {
  static let tunnelFields = [
    "name", "mode", "peer", "remote_ts", "alias", "local", "inbound", "outbound", "nat_keepalive",
  ]

  /// Parses one tunnel object and checks the rules that concern it alone: fields, `mode`,
  /// `remote_ts` in tunnel mode, no `alias` in tunnel mode, and its SAs.
  ///
  /// A transport tunnel without `alias` comes back with `alias == nil`; ``validate(_:)`` on the
  /// configuration that includes it allocates one from `transport_alias_pool` (or reports that
  /// there is none), and checks names, SPIs and prefixes against the other tunnels.
  /// - Parameters:
  ///   - value: the tunnel object.
  ///   - path: how problems name it (`tunnels[1]`, or `tunnel` in a control request).
  /// - Returns: the tunnel, or every problem found in it.
  public static func parseTunnel(_ value: JSONValue, path: String) -> Result<TunnelConfig, ConfigErrors> {
    var problems = Problems()
    let draft = parseTunnelDraft(value, path: path, &problems)
    guard problems.isEmpty, let t = draft.tunnel else { return .failure(ConfigErrors(problems: problems.lines)) }
    return .success(t)
  }

  static func parseTunnelDraft(_ value: JSONValue, path: String, _ problems: inout Problems) -> TunnelDraft {
    var draft = TunnelDraft(path: path)
    let before = problems.lines.count
    guard let r = FieldReader(value, path: path, what: "a tunnel object", problems: &problems) else { return draft }
    r.rejectUnknown(allowed: tunnelFields, problems: &problems)

    let nameExpected = "a name of 1-64 letters, digits, '.', '_' or '-'"
    if let v = r["name"] {
      if let s = string(v, r.path("name"), expected: nameExpected, &problems) {
        if validTunnelName(s) {
          draft.name = s
        } else {
          problems.add(r.path("name"), expected: nameExpected, got: describe(v))
        }
      }
    } else {
      problems.add(r.path("name"), expected: nameExpected, got: describe(r["name"]))
    }

    draft.mode = .tunnel
    if let v = r["mode"] {
      let expected = "\"tunnel\" or \"transport\""
      if let s = string(v, r.path("mode"), expected: expected, &problems) {
        draft.mode = TunnelMode(rawValue: s)
        if draft.mode == nil {
          let hint = Suggestion.closest(to: s, among: ["tunnel", "transport"]).map { " (did you mean \"\($0)\"?)" }
          problems.add(r.path("mode"), expected: expected, got: describe(v) + (hint ?? ""))
        }
      } else {
        draft.mode = nil
      }
    }

    var peer: Endpoint? = nil
    if let v = r["peer"] { peer = endpoint(v, r.path("peer"), wildcard: false, &problems) }

    let remoteTSBefore = problems.lines.count
    if let v = r["remote_ts"],
      let list = array(v, r.path("remote_ts"), expected: "an array of prefixes ADDRESS/LENGTH", &problems)
    {
      for (i, item) in list.enumerated() {
        let p = ConfigPath.element(r.path("remote_ts"), i)
        guard let prefix = prefix(item, p, network: true, &problems) else { continue }
        if let first = draft.remoteTS.first(where: { $0.prefix == prefix }) {
          problems.add(p, expected: "each prefix once", got: "\(prefix) again (also \(first.path))")
          continue
        }
        draft.remoteTS.append((prefix, p))
      }
    }
    if draft.mode == .tunnel && draft.remoteTS.isEmpty && problems.lines.count == remoteTSBefore {
      problems.add(
        r.path("remote_ts"), expected: "at least one prefix in tunnel mode", got: describe(r["remote_ts"]))
    }

    if let v = r["alias"] {
      draft.aliasGiven = true
      if draft.mode == .tunnel {
        problems.add(
          r.path("alias"), expected: "no alias in tunnel mode (alias is for transport tunnels)", got: describe(v))
      } else {
        draft.alias = address(v, r.path("alias"), &problems)
      }
    }

    var local: IPAddress? = nil
    if let v = r["local"] { local = address(v, r.path("local"), &problems) }
    if let local, let peer, local.isV6 != peer.address.isV6 {
      problems.add(
        r.path("local"), expected: "an \(peer.address.isV6 ? "IPv6" : "IPv4") address like peer \(peer)",
        got: "\(local)")
    }

    var natKeepalive = true
    if let v = r["nat_keepalive"], let b = bool(v, r.path("nat_keepalive"), &problems) { natKeepalive = b }

    var inbound: [SAConfig] = []
    let inboundExpected = "a non-empty array of SA objects"
    if let v = r["inbound"], let list = array(v, r.path("inbound"), expected: inboundExpected, &problems) {
      if list.isEmpty { problems.add(r.path("inbound"), expected: inboundExpected, got: describe(v)) }
      for (i, item) in list.enumerated() {
        let p = ConfigPath.element(r.path("inbound"), i)
        let (spi, sa) = parseSADraft(item, path: p, direction: .inbound, &problems)
        if let spi { draft.inboundSPIs.append((spi, ConfigPath.member(p, "spi"))) }
        if let sa { inbound.append(sa) }
      }
    } else if r["inbound"] == nil {
      problems.add(r.path("inbound"), expected: inboundExpected, got: "nothing")
    }

    var outbound: SAConfig? = nil
    if let v = r["outbound"] {
      let (spi, sa) = parseSADraft(v, path: r.path("outbound"), direction: .outbound, &problems)
      if let spi { draft.outboundSPI = (spi, ConfigPath.member(r.path("outbound"), "spi")) }
      outbound = sa
    } else {
      problems.add(r.path("outbound"), expected: "an SA object", got: "nothing")
    }

    if problems.lines.count == before, let name = draft.name, let mode = draft.mode, let outbound {
      draft.tunnel = TunnelConfig(
        name: name, mode: mode, peer: peer, remoteTS: draft.remoteTS.map(\.prefix), alias: draft.alias, local: local,
        inbound: inbound, outbound: outbound, natKeepalive: natKeepalive)
    }
    return draft
  }

  /// `[A-Za-z0-9._-]{1,64}`: safe in metrics labels, log lines and file names.
  package static func validTunnelName(_ s: String) -> Bool {
    guard !s.isEmpty, s.utf8.count <= 64 else { return false }
    return s.utf8.allSatisfy { c in
      (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
        || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
        || c == UInt8(ascii: "-")
    }
  }
}
