// SPDX-License-Identifier: Apache-2.0
// The `ike` object: where IKE goes (punt), espd's own end of that channel (punt_local), and the
// sockets where every datagram is IKE (listen: port 500).
import ESP

/// What `ike` configures.
struct IKESettings {
  var punt: PuntTarget? = nil
  var local: PuntTarget? = nil
  var listen: [Endpoint] = []
}

extension ConfigParser {
  static let ikeFields = ["punt", "punt_local", "listen"]

  /// `ike`: `{ "punt": "udp:HOST:PORT" | "unix:PATH", "punt_local": (the same kind),
  /// "listen": [endpoints] }`.
  static func parseIKE(_ value: JSONValue, _ path: String, listen: [Endpoint], _ problems: inout Problems)
    -> IKESettings
  {
    var out = IKESettings()
    guard
      let r = FieldReader(
        value, path: path, what: "an object with punt (and punt_local, listen)", problems: &problems)
    else { return out }
    r.rejectUnknown(allowed: ikeFields, problems: &problems)
    if let v = r["listen"] { out.listen = parseIKEListen(v, r.path("listen"), listen: listen, &problems) }
    guard let v = r["punt"] else {
      if r["punt_local"] != nil || !out.listen.isEmpty {
        problems.add(
          r.path("punt"), expected: "the IKE daemon's address (punt_local and listen need it)", got: "nothing")
      }
      return out
    }
    out.punt = puntTarget(v, r.path("punt"), avoiding: listen + out.listen, &problems)
    if let v = r["punt_local"],
      let local = puntTarget(v, r.path("punt_local"), avoiding: listen + out.listen, &problems)
    {
      switch (out.punt, local) {
      case (.unix(let a), .unix(let b)) where a == b:
        problems.add(r.path("punt_local"), expected: "a path other than punt's", got: describe(v))
      case (.udp(let a), .udp(let b)) where a == b || a.address.isV6 != b.address.isV6:
        problems.add(r.path("punt_local"), expected: "an endpoint of punt's family other than punt's", got: describe(v))
      case (.unix, .udp), (.udp, .unix):
        problems.add(r.path("punt_local"), expected: "the same kind as punt (unix: or udp:)", got: describe(v))
      default: out.local = local
      }
    }
    return out
  }

  /// `ike.listen`: endpoints (wildcards allowed), each once, none on a `listen` socket's port and
  /// address (two UDP sockets bound alike would split the datagrams between them).
  static func parseIKEListen(_ value: JSONValue, _ path: String, listen: [Endpoint], _ problems: inout Problems)
    -> [Endpoint]
  {
    let expected = "an array of \(endpointSyntax) (usually port 500)"
    guard let list = array(value, path, expected: expected, &problems) else { return [] }
    var out: [Endpoint] = []
    for (i, v) in list.enumerated() {
      let p = ConfigPath.element(path, i)
      guard let e = endpoint(v, p, wildcard: true, &problems) else { continue }
      if out.contains(e) {
        problems.add(p, expected: "each endpoint once", got: "\(e) again")
      } else if let l = listen.first(where: { overlaps($0, e) }) {
        problems.add(p, expected: "an endpoint no listen socket has", got: "\(e) (listen \(l))")
      } else {
        out.append(e)
      }
    }
    return out
  }

  /// Whether two bound UDP sockets would take the same datagrams: one port, one family (IPv6
  /// sockets are IPv6-only), one address or a wildcard.
  static func overlaps(_ a: Endpoint, _ b: Endpoint) -> Bool {
    a.port == b.port && a.address.isV6 == b.address.isV6
      && (a.address == b.address || a.address.isUnspecified || b.address.isUnspecified)
  }

  /// A punt address: `unix:PATH` or `udp:HOST:PORT`, never one of espd's own UDP sockets (that
  /// would loop every IKE datagram back to espd).
  static func puntTarget(_ v: JSONValue, _ path: String, avoiding own: [Endpoint], _ problems: inout Problems)
    -> PuntTarget?
  {
    let expected = "udp:\(endpointSyntax) or unix:PATH"
    guard let s = string(v, path, expected: expected, &problems) else { return nil }
    if s.hasPrefix("unix:") {
      let p = s.dropFirst(5)
      guard validSocketPath(p) else {
        problems.add(path, expected: "unix:PATH with a path of 1-107 bytes", got: describe(v))
        return nil
      }
      return .unix(String(p))
    }
    guard s.hasPrefix("udp:"), case .ok(let e) = parseEndpoint(s.dropFirst(4)) else {
      problems.add(path, expected: expected, got: describe(v))
      return nil
    }
    guard !e.address.isUnspecified else {
      problems.add(path, expected: "a unicast address in \(expected)", got: describe(v))
      return nil
    }
    // A `[::]` listen socket is dual-stack for this check (the punt target must never be ours).
    if let l = own.first(where: {
      $0.port == e.port
        && ($0.address == e.address || ($0.address.isUnspecified && ($0.address.isV6 || !e.address.isV6)))
    }) {
      problems.add(path, expected: "an endpoint that is not a listen socket", got: "\(describe(v)) (listen \(l))")
      return nil
    }
    return .udp(e)
  }
}
