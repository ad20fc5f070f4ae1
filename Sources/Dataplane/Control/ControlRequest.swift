// SPDX-License-Identifier: Apache-2.0
// One control-socket request line (INTERFACE.md "Control socket"), parsed and checked. Pure.
import ESP
import Forwarding

/// A request on the control socket.
public enum ControlRequest: Sendable {
  case addTunnel(TunnelConfig)
  case deleteTunnel(name: String)
  /// Adds `inbound` (if given) first, then switches to `outbound` (if given).
  case rekey(name: String, inbound: SAConfig?, outbound: SAConfig?)
  case deleteSA(spi: UInt32)
  case list
  /// `tunnels: false` (`{"op":"stats","tunnels":false}`) leaves the per-tunnel list out: the
  /// global counters of a node with a million tunnels in a few kilobytes.
  case stats(tunnels: Bool)
  case subscribe
  /// `alloc_spi`: reserves an unused inbound SPI in `min...max` (ControlModel+SPIs.swift).
  case allocSPI(min: UInt32, max: UInt32)
  /// `release_spi`: frees a reserved SPI that no SA uses.
  case releaseSPI(spi: UInt32)
  /// `query_sa`: one SA's counters and last use.
  case querySA(name: String, spi: UInt32, direction: SADirection)
  /// `update_tunnel`: moves a tunnel's peer (and its local address, if given).
  case updateTunnel(name: String, peer: Endpoint, local: IPAddress?)
  /// `{"op":"list","names_only":true}`: the tunnels' names (those beginning with `prefix`).
  case listNames(prefix: String?)

  /// Whether the request changes the tunnels, SAs or SPI reservations.
  public var isChange: Bool {
    switch self {
    case .addTunnel, .deleteTunnel, .rekey, .deleteSA, .allocSPI, .releaseSPI, .updateTunnel: true
    case .list, .stats, .subscribe, .querySA, .listNames: false
    }
  }

  /// The ops, as the `op` member names them.
  public static let ops = [
    "add_tunnel", "delete_tunnel", "rekey", "delete_sa", "list", "stats", "subscribe", "alloc_spi", "release_spi",
    "query_sa", "update_tunnel",
  ]

  /// Parses one request line (one JSON object).
  /// - Returns: the request, or a one-line error for the answer (never quoting key material).
  public static func parse(_ line: [UInt8]) -> Result<ControlRequest, ControlError> {
    let value: JSONValue
    do {
      value = try JSONValue.parse(bytes: line, limits: JSONLimits(maxBytes: ControlLimits.maxRequestBytes))
    } catch {
      return .failure(ControlError("bad JSON: \(error)"))
    }
    guard case .object(let members) = value else {
      return .failure(ControlError("expected a JSON object with an \"op\" member, got \(value.kind)"))
    }
    guard case .string(let op)? = value["op"] else {
      return .failure(ControlError("op: expected one of \(ops.joined(separator: ", "))"))
    }
    func only(_ allowed: [String]) -> ControlError? {
      for m in members where m.key != "op" && !allowed.contains(m.key) {
        return ControlError(
          "\(m.key): unknown member for op \(op) (expected \(allowed.isEmpty ? "none" : allowed.joined(separator: ", ")))"
        )
      }
      return nil
    }
    func name() -> Result<String, ControlError> {
      guard case .string(let s)? = value["name"], ConfigParser.validTunnelName(s) else {
        return .failure(ControlError("name: expected a tunnel name, got \(describe(value["name"]))"))
      }
      return .success(s)
    }
    func errors(_ e: ConfigErrors) -> ControlError { ControlError(e.problems.joined(separator: "; ")) }

    switch op {
    case "add_tunnel":
      if let e = only(["tunnel"]) { return .failure(e) }
      guard let t = value["tunnel"] else { return .failure(ControlError("tunnel: missing (a tunnel object)")) }
      return ConfigParser.parseTunnel(t, path: "tunnel").map { .addTunnel($0) }.mapError(errors)
    case "delete_tunnel":
      if let e = only(["name"]) { return .failure(e) }
      return name().map { .deleteTunnel(name: $0) }
    case "rekey":
      if let e = only(["name", "inbound", "outbound"]) { return .failure(e) }
      let n: String
      switch name() {
      case .success(let s): n = s
      case .failure(let e): return .failure(e)
      }
      guard value["inbound"] != nil || value["outbound"] != nil else {
        return .failure(ControlError("rekey: expected an inbound SA, an outbound SA or both"))
      }
      var inbound: SAConfig? = nil
      var outbound: SAConfig? = nil
      if let v = value["inbound"] {
        switch ConfigParser.parseSA(v, path: "inbound", direction: .inbound) {
        case .success(let sa): inbound = sa
        case .failure(let e): return .failure(errors(e))
        }
      }
      if let v = value["outbound"] {
        switch ConfigParser.parseSA(v, path: "outbound", direction: .outbound) {
        case .success(let sa): outbound = sa
        case .failure(let e): return .failure(errors(e))
        }
      }
      return .success(.rekey(name: n, inbound: inbound, outbound: outbound))
    case "delete_sa":
      if let e = only(["spi"]) { return .failure(e) }
      guard let v = value["spi"], let n = ConfigParser.hexOrInteger(v), n != 0, n <= UInt64(UInt32.max) else {
        return .failure(ControlError("spi: expected a non-zero 32-bit SPI, got \(describe(value["spi"]))"))
      }
      return .success(.deleteSA(spi: UInt32(n)))
    case "stats":
      if let e = only(["tunnels"]) { return .failure(e) }
      switch value["tunnels"] {
      case nil, .bool(true)?: return .success(.stats(tunnels: true))
      case .bool(false)?: return .success(.stats(tunnels: false))
      case let v: return .failure(ControlError("tunnels: expected true or false, got \(describe(v))"))
      }
    case "list":
      if let e = only(["names_only", "prefix"]) { return .failure(e) }
      return parseList(value)
    case "subscribe":
      if let e = only([]) { return .failure(e) }
      return .success(.subscribe)
    case "alloc_spi":
      if let e = only(["min", "max"]) { return .failure(e) }
      return parseAllocSPI(value)
    case "release_spi":
      if let e = only(["spi"]) { return .failure(e) }
      return spi(value["spi"], path: "spi").map { .releaseSPI(spi: $0) }
    case "query_sa":
      if let e = only(["name", "spi", "direction"]) { return .failure(e) }
      return name().flatMap { n in parseQuerySA(value, name: n) }
    case "update_tunnel":
      if let e = only(["name", "peer", "local"]) { return .failure(e) }
      return name().flatMap { n in parseUpdateTunnel(value, name: n) }
    default:
      return .failure(
        ControlError("op: unknown op \(JSONValue.quoted(op)) (expected one of \(ops.joined(separator: ", ")))"))
    }
  }
}

/// A control request that was refused: the text of `{"ok":false,"error":"…"}`.
public struct ControlError: Error, Equatable, Sendable, CustomStringConvertible {
  public let message: String
  /// Whether a resource limit (`limits`) refused the request (counted as `control_refused_limit`).
  public let isLimit: Bool
  public init(_ message: String, isLimit: Bool = false) {
    self.message = message
    self.isLimit = isLimit
  }
  /// A refusal because a configured limit would be passed.
  public static func limit(_ message: String) -> ControlError { ControlError(message, isLimit: true) }
  public var description: String { message }

  /// The error answer line.
  public var answer: String { JSONValue.object([("ok", .bool(false)), ("error", .string(message))]).jsonText }
}

/// Bounds on what the control socket accepts that are not configurable (those that are: ``Limits``).
public enum ControlLimits {
  /// The longest request line.
  public static let maxRequestBytes = 1 << 20
  /// Unsent answer and event bytes per connection past which the next answer or event closes it as
  /// too slow (one answer larger than this, a `list` of many tunnels, is still sent whole).
  public static let maxPendingOutput = 4 << 20
  /// Open metrics (HTTP) connections at once.
  public static let maxMetricsConnections = 16
}
