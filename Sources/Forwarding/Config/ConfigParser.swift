// SPDX-License-Identifier: Apache-2.0
// The configuration file (INTERFACE.md) from JSON to a validated `Config`: entry points and global fields.
import ESP

/// Reads and validates espd's JSON configuration, reporting every problem at once.
///
/// Each problem is one line, `<path>: expected <what was expected>, got <what was found>`
/// (``ConfigErrors``). Unknown fields are errors, with a "did you mean" hint when one is close;
/// JSON `null` for an optional field means absent. The control socket parses its tunnels and SAs
/// with ``parseTunnel(_:path:)`` and ``parseSA(_:path:direction:)``, then checks the result
/// against the running configuration with ``validate(_:)``.
///
/// Pure functions of their input; safe on any thread.
public enum ConfigParser {
  static let rootFields = [
    "listen", "tun", "nat_keepalive_seconds", "ike", "control", "metrics", "transport_alias_pool", "tunnels", "limits",
    "udp_receive_buffer", "udp_send_buffer", "metrics_per_tunnel",
  ]
  static let tunFields = ["name", "mtu", "addresses", "txqueuelen"]

  /// Parses and validates a configuration file's text.
  /// - Parameter text: the JSON text.
  /// - Returns: the configuration (transport aliases allocated), or every problem found.
  public static func parse(_ text: String) -> Result<Config, ConfigErrors> {
    parse(bytes: Array(text.utf8))
  }

  /// The largest configuration file accepted: 1 GiB, a few million tunnels (a control-socket
  /// request keeps JSONLimits' smaller default).
  public static let maxFileBytes = 1 << 30

  /// Parses and validates a configuration given as UTF-8 bytes (as read from the file).
  /// - Parameter bytes: the JSON text; invalid UTF-8 is a problem, never replaced.
  /// - Returns: the configuration, or every problem found (a syntax error is a single problem).
  public static func parse(bytes: [UInt8]) -> Result<Config, ConfigErrors> {
    do {
      return parse(try JSONValue.parse(bytes: bytes, limits: JSONLimits(maxBytes: maxFileBytes)))
    } catch {
      return .failure(ConfigErrors(problems: [error.description]))
    }
  }

  /// Validates a configuration already parsed as JSON.
  /// - Parameter value: the root object.
  /// - Returns: the configuration, or every problem found.
  public static func parse(_ value: JSONValue) -> Result<Config, ConfigErrors> {
    var problems = Problems()
    guard let root = FieldReader(value, path: "", what: "a JSON object", problems: &problems) else {
      return .failure(ConfigErrors(problems: problems.lines))
    }
    root.rejectUnknown(allowed: rootFields, problems: &problems)

    let listen = parseListen(root["listen"], &problems)

    // A tun with problems is left out of the cross-checks that depend on it (nil).
    var tun: TunConfig? = TunConfig()
    if let v = root["tun"] { tun = parseTun(v, "tun", &problems) }

    var keepalive = 20
    if let v = root["nat_keepalive_seconds"],
      let n = integer(v, "nat_keepalive_seconds", in: 0...86400, expected: "seconds 0-86400 (0 disables)", &problems)
    {
      keepalive = Int(n)
    }

    var ike = IKESettings()
    if let v = root["ike"] { ike = parseIKE(v, "ike", listen: listen, &problems) }

    var control = "/run/espd/control.sock"
    if let v = root["control"], let s = socketPath(v, "control", &problems) { control = s }
    for (field, target) in [("ike.punt", ike.punt), ("ike.punt_local", ike.local)] where target == .unix(control) {
      problems.add(field, expected: "a path other than control's", got: "\"unix:\(control)\"")
    }

    var metrics: Endpoint? = nil
    if let v = root["metrics"] { metrics = endpoint(v, "metrics", wildcard: true, &problems) }

    var pool: Prefix? = nil
    let poolGiven = root["transport_alias_pool"] != nil
    if let v = root["transport_alias_pool"] { pool = prefix(v, "transport_alias_pool", network: true, &problems) }

    var limits = Limits()
    if let v = root["limits"] { limits = parseLimits(v, "limits", &problems) }

    var buffers = (Config.defaultUDPBuffer, Config.defaultUDPBuffer)
    let bufferRange: ClosedRange<UInt64> = 65536...(1 << 30)
    let bufferText = "bytes 65536-1073741824"
    if let v = root["udp_receive_buffer"],
      let n = integer(v, "udp_receive_buffer", in: bufferRange, expected: bufferText, &problems)
    {
      buffers.0 = Int(n)
    }
    if let v = root["udp_send_buffer"],
      let n = integer(v, "udp_send_buffer", in: bufferRange, expected: bufferText, &problems)
    {
      buffers.1 = Int(n)
    }
    var perTunnel = true
    if let v = root["metrics_per_tunnel"] {
      if case .bool(let b) = v {
        perTunnel = b
      } else {
        problems.add("metrics_per_tunnel", expected: "true or false", got: v.kind)
      }
    }

    var drafts: [TunnelDraft] = []
    if let v = root["tunnels"],
      let list = array(v, "tunnels", expected: "an array of tunnel objects", &problems)
    {
      for (i, t) in list.enumerated() {
        drafts.append(parseTunnelDraft(t, path: ConfigPath.element("tunnels", i), &problems))
      }
    }
    crossCheck(&drafts, tun: tun, pool: pool, poolGiven: poolGiven, &problems)

    guard problems.isEmpty, let tun else { return .failure(ConfigErrors(problems: problems.lines)) }
    let tunnels = drafts.compactMap(\.tunnel)
    guard tunnels.count == drafts.count else { return .failure(ConfigErrors(problems: problems.lines)) }
    checkLimits(tunnels, limits, &problems)
    guard problems.isEmpty else { return .failure(ConfigErrors(problems: problems.lines)) }
    var config = Config(
      listen: listen, tun: tun, natKeepaliveSeconds: keepalive, ikePunt: ike.punt, control: control,
      metrics: metrics, transportAliasPool: pool, tunnels: tunnels, limits: limits)
    config.ikePuntLocal = ike.local
    config.ikeListen = ike.listen
    (config.udpReceiveBuffer, config.udpSendBuffer) = buffers
    config.metricsPerTunnel = perTunnel
    return .success(config)
  }

  // MARK: Global fields

  /// `listen`: at least one endpoint, wildcards allowed, no duplicates.
  static func parseListen(_ value: JSONValue?, _ problems: inout Problems) -> [Endpoint] {
    let expected = "an array of at least one \(endpointSyntax)"
    guard let value else {
      problems.add("listen", expected: expected, got: "nothing")
      return []
    }
    guard let list = array(value, "listen", expected: expected, &problems) else { return [] }
    if list.isEmpty { problems.add("listen", expected: expected, got: describe(value)) }
    var out: [Endpoint] = []
    var seen: [Endpoint: Int] = [:]
    for (i, v) in list.enumerated() {
      let path = ConfigPath.element("listen", i)
      guard let e = endpoint(v, path, wildcard: true, &problems) else { continue }
      if let first = seen[e] {
        problems.add(path, expected: "each endpoint once", got: "\(e) again (also listen[\(first)])")
        continue
      }
      seen[e] = i
      out.append(e)
    }
    return out
  }

  /// `tun`: `name` (IFNAMSIZ), `mtu` (576-9000, 1280 with IPv6), `addresses` (interface addresses).
  static func parseTun(_ value: JSONValue, _ path: String, _ problems: inout Problems) -> TunConfig? {
    let before = problems.lines.count
    guard let r = FieldReader(value, path: path, what: "an object with name, mtu and addresses", problems: &problems)
    else { return nil }
    r.rejectUnknown(allowed: tunFields, problems: &problems)
    var tun = TunConfig()
    if let v = r["name"] {
      let expected = "an interface name of 1-15 bytes without '/', ':' or whitespace"
      if let s = string(v, r.path("name"), expected: expected, &problems) {
        if validInterfaceName(s) {
          tun.name = s
        } else {
          problems.add(r.path("name"), expected: expected, got: describe(v))
        }
      }
    }
    if let v = r["mtu"], let n = integer(v, r.path("mtu"), in: 576...9000, &problems) { tun.mtu = Int(n) }
    if let v = r["txqueuelen"], let n = integer(v, r.path("txqueuelen"), in: 1...100_000, &problems) {
      tun.txQueueLength = Int(n)
    }
    if let v = r["addresses"],
      let list = array(v, r.path("addresses"), expected: "an array of ADDRESS/LENGTH", &problems)
    {
      var seen: [IPAddress: Int] = [:]
      for (i, a) in list.enumerated() {
        let p = ConfigPath.element(r.path("addresses"), i)
        guard let prefix = prefix(a, p, network: false, &problems) else { continue }
        if let first = seen[prefix.address] {
          problems.add(p, expected: "each address once", got: "\(prefix.address) again (also addresses[\(first)])")
          continue
        }
        seen[prefix.address] = i
        tun.addresses.append(prefix)
      }
    }
    // RFC 8200 §5: every IPv6 link carries at least 1280-byte packets.
    if tun.mtu < 1280, tun.addresses.contains(where: { $0.address.isV6 }) {
      problems.add(r.path("mtu"), expected: "at least 1280 with an IPv6 address (RFC 8200 §5)", got: "\(tun.mtu)")
    }
    return problems.lines.count == before ? tun : nil
  }

  /// Linux `dev_valid_name`: 1 to IFNAMSIZ-1 bytes, not `.` or `..`, no `/`, `:` or whitespace.
  static func validInterfaceName(_ s: String) -> Bool {
    guard !s.isEmpty, s.utf8.count <= 15, s != ".", s != ".." else { return false }
    return s.utf8.allSatisfy { c in
      c > 0x20 && c != 0x7F && c != UInt8(ascii: "/") && c != UInt8(ascii: ":")
    }
  }

}
