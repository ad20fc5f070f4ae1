// SPDX-License-Identifier: Apache-2.0
// The ops charon's kernel-espd plugin added to the control protocol (integrations/strongswan/
// ESPD-EXTENSIONS.md): their members, parsed and checked. Pure.
import ESP
import Forwarding

extension ControlRequest {
  /// The lowest SPI `alloc_spi` hands out: 1-255 are reserved by IANA (RFC 4303 §2.1), 0 is none.
  static let lowestSPI: UInt32 = 256

  /// A non-zero 32-bit SPI (`"0x…"` or an integer).
  static func spi(_ v: JSONValue?, path: String) -> Result<UInt32, ControlError> {
    guard let v, let n = ConfigParser.hexOrInteger(v), n != 0, n <= UInt64(UInt32.max) else {
      return .failure(ControlError("\(path): expected a non-zero 32-bit SPI, got \(describe(v))"))
    }
    return .success(UInt32(n))
  }

  /// `{"op":"list"}` with `names_only` (and `prefix`, only with names).
  static func parseList(_ value: JSONValue) -> Result<ControlRequest, ControlError> {
    let namesOnly: Bool
    switch value["names_only"] {
    case nil, .bool(false)?: namesOnly = false
    case .bool(true)?: namesOnly = true
    case let v: return .failure(ControlError("names_only: expected true or false, got \(describe(v))"))
    }
    guard let p = value["prefix"] else { return .success(namesOnly ? .listNames(prefix: nil) : .list) }
    guard namesOnly else { return .failure(ControlError("prefix: only with \"names_only\":true")) }
    guard case .string(let s) = p, s.utf8.count <= 64 else {
      return .failure(ControlError("prefix: expected a string of at most 64 bytes, got \(describe(p))"))
    }
    return .success(.listNames(prefix: s))
  }

  /// `alloc_spi`: `min` and `max` (default 0x100 and 0xffffffff), both SPIs, `min <= max`, and
  /// `max` above the reserved values 0-255.
  static func parseAllocSPI(_ value: JSONValue) -> Result<ControlRequest, ControlError> {
    var bounds: [UInt32] = []
    for (member, fallback) in [("min", lowestSPI), ("max", UInt32.max)] {
      guard let v = value[member] else {
        bounds.append(fallback)
        continue
      }
      guard let n = ConfigParser.hexOrInteger(v), n <= UInt64(UInt32.max) else {
        return .failure(ControlError("\(member): expected a 32-bit SPI, got \(describe(v))"))
      }
      bounds.append(UInt32(n))
    }
    let (lo, hi) = (bounds[0], bounds[1])
    guard lo <= hi else {
      return .failure(
        ControlError("max: expected at least min (\(ConfigParser.spiText(lo))), got \(ConfigParser.spiText(hi))"))
    }
    guard hi >= lowestSPI else {
      return .failure(
        ControlError("max: expected an SPI of 0x100 or more (0-255 are reserved), got \(ConfigParser.spiText(hi))"))
    }
    return .success(.allocSPI(min: Swift.max(lo, lowestSPI), max: hi))
  }

  /// `query_sa`: `spi` and `direction` (`"inbound"` or `"outbound"`).
  static func parseQuerySA(_ value: JSONValue, name: String) -> Result<ControlRequest, ControlError> {
    guard case .string(let d)? = value["direction"], let direction = SADirection(rawValue: d) else {
      return .failure(
        ControlError("direction: expected \"inbound\" or \"outbound\", got \(describe(value["direction"]))"))
    }
    return spi(value["spi"], path: "spi").map { .querySA(name: name, spi: $0, direction: direction) }
  }

  /// `update_tunnel`: `peer` (a unicast endpoint) and, optionally, `local` (an address of its family).
  static func parseUpdateTunnel(_ value: JSONValue, name: String) -> Result<ControlRequest, ControlError> {
    var problems = Problems()
    guard let v = value["peer"] else { return .failure(ControlError("peer: missing (\(ConfigParser.endpointSyntax))")) }
    let peer = ConfigParser.endpoint(v, "peer", wildcard: false, &problems)
    var local: IPAddress? = nil
    if let l = value["local"] { local = ConfigParser.address(l, "local", &problems) }
    if let local, let peer, local.isV6 != peer.address.isV6 {
      problems.add(
        "local", expected: "an \(peer.address.isV6 ? "IPv6" : "IPv4") address like peer \(peer)", got: "\(local)")
    }
    guard problems.isEmpty, let peer else { return .failure(ControlError(problems.lines.joined(separator: "; "))) }
    return .success(.updateTunnel(name: name, peer: peer, local: local))
  }
}
