// SPDX-License-Identifier: Apache-2.0
// Scalar configuration values: integers, booleans, hex, addresses, prefixes, endpoints and socket paths.
import ESP

extension ConfigParser {
  package static let endpointSyntax = "ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)"

  static func string(_ v: JSONValue, _ path: String, expected: String, _ problems: inout Problems) -> String? {
    guard case .string(let s) = v else {
      problems.add(path, expected: expected, got: describe(v))
      return nil
    }
    return s
  }

  static func bool(_ v: JSONValue, _ path: String, _ problems: inout Problems) -> Bool? {
    guard case .bool(let b) = v else {
      problems.add(path, expected: "true or false", got: describe(v))
      return nil
    }
    return b
  }

  static func array(_ v: JSONValue, _ path: String, expected: String, _ problems: inout Problems) -> [JSONValue]? {
    guard case .array(let a) = v else {
      problems.add(path, expected: expected, got: describe(v))
      return nil
    }
    return a
  }

  /// A JSON integer within `range`; `expected` defaults to `an integer lo...hi`.
  static func integer(
    _ v: JSONValue, _ path: String, in range: ClosedRange<UInt64>, expected: String? = nil, _ problems: inout Problems
  ) -> UInt64? {
    guard let n = v.integerValue, range.contains(n) else {
      let what =
        expected
        ?? (range.upperBound == .max ? "a non-negative integer" : "an integer \(range.lowerBound)-\(range.upperBound)")
      problems.add(path, expected: what, got: describe(v))
      return nil
    }
    return n
  }

  /// A number given as a JSON integer or as a hex string with or without `0x` (`spi`, `seq`).
  /// - Returns: nil if it is neither, or above `UInt64.max`.
  package static func hexOrInteger(_ v: JSONValue) -> UInt64? {
    switch v {
    case .number: return v.integerValue
    case .string(let s):
      var digits = Substring(s)
      if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
      guard !digits.isEmpty, digits.utf8.count <= 64 else { return nil }
      var value: UInt64 = 0
      for c in digits.utf8 {
        guard let d = hexValue(c), value >> 60 == 0 else { return nil }
        value = value << 4 | UInt64(d)
      }
      return value
    default: return nil
    }
  }

  private static func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
  }

  /// Key material as a hex string, with or without `0x`. Messages never echo the digits.
  static func hexBytes(_ v: JSONValue, _ path: String, _ problems: inout Problems) -> [UInt8]? {
    guard case .string(let s) = v else {
      problems.add(path, expected: "a hex string", got: v.kind)
      return nil
    }
    let offset = s.hasPrefix("0x") || s.hasPrefix("0X") ? 2 : 0
    for (i, c) in s.utf8.enumerated().dropFirst(offset) where hexValue(c) == nil {
      problems.add(path, expected: "hex digits (with or without 0x)", got: "a non-hex character at position \(i + 1)")
      return nil
    }
    guard let bytes = Hex.decode(s) else {
      problems.add(path, expected: "an even number of hex digits", got: "\(s.utf8.count - offset)")
      return nil
    }
    return bytes
  }

  /// A path for a Unix socket: 1-107 bytes (`sun_path` holds 108 with the NUL), no NUL.
  static func socketPath(_ v: JSONValue, _ path: String, _ problems: inout Problems) -> String? {
    let expected = "a Unix socket path of 1-107 bytes"
    guard let s = string(v, path, expected: expected, &problems) else { return nil }
    guard validSocketPath(s) else {
      problems.add(path, expected: expected, got: describe(v))
      return nil
    }
    return s
  }

  static func validSocketPath(_ s: some StringProtocol) -> Bool {
    !s.isEmpty && s.utf8.count <= 107 && !s.utf8.contains(0)
  }

  // MARK: Addresses

  /// Dotted-quad IPv4 (no leading zeros, which `inet_aton` would read as octal) or RFC 4291 IPv6
  /// text (hex groups and `::`; no zone, no embedded IPv4). Stricter than ``IPAddress/init(_:)``.
  static func parseAddress(_ text: some StringProtocol) -> IPAddress? {
    guard !text.isEmpty, text.utf8.count <= 39 else { return nil }
    if text.contains(":") {
      guard text.utf8.allSatisfy({ hexValue($0) != nil || $0 == UInt8(ascii: ":") }) else { return nil }
    } else {
      guard text.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: ".") }) else { return nil }
      for part in text.split(separator: ".", omittingEmptySubsequences: false)
      where part.count > 1 && part.hasPrefix("0") {
        return nil
      }
    }
    return IPAddress(text)
  }

  package static func address(_ v: JSONValue, _ path: String, _ problems: inout Problems) -> IPAddress? {
    let expected = "an IPv4 or IPv6 address"
    guard let s = string(v, path, expected: expected, &problems) else { return nil }
    guard let a = parseAddress(s) else {
      problems.add(path, expected: expected, got: describe(v))
      return nil
    }
    guard !a.isUnspecified else {
      problems.add(path, expected: "a unicast address", got: describe(v))
      return nil
    }
    return a
  }

  /// `ADDRESS/LENGTH`, or a bare address as a host prefix (/32, /128).
  /// - Parameter network: whether host bits must be zero (routes, pools) or may be set (interface addresses).
  static func prefix(_ v: JSONValue, _ path: String, network: Bool, _ problems: inout Problems) -> Prefix? {
    let expected = network ? "a prefix ADDRESS/LENGTH" : "an address ADDRESS/LENGTH"
    guard let s = string(v, path, expected: expected, &problems) else { return nil }
    let parts = s.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
    guard let a = parseAddress(parts[0]) else {
      problems.add(path, expected: expected, got: describe(v))
      return nil
    }
    let bits = a.isV6 ? 128 : 32
    var length = bits
    if parts.count == 2 {
      guard parts[1].utf8.count <= 3, parts[1].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(parts[1]),
        n <= bits
      else {
        problems.add(path, expected: "\(expected) with a length 0-\(bits)", got: describe(v))
        return nil
      }
      length = n
    }
    let p = Prefix(address: a, length: length)
    if network && p.network != p {
      problems.add(path, expected: "\(p.network) (host bits must be zero)", got: describe(v))
      return nil
    }
    return p
  }

  /// The outcome of reading `ADDRESS:PORT`.
  enum EndpointText {
    case ok(Endpoint)
    case syntax, address, port
  }

  static func parseEndpoint(_ text: some StringProtocol) -> EndpointText {
    let s = Substring(text)
    let host: Substring
    let portText: Substring
    if s.hasPrefix("[") {
      guard let close = s.firstIndex(of: "]") else { return .syntax }
      host = s[s.index(after: s.startIndex)..<close]
      let rest = s[s.index(after: close)...]
      guard rest.hasPrefix(":") else { return .syntax }
      portText = rest.dropFirst()
      guard host.contains(":") else { return .address }
    } else {
      guard let colon = s.lastIndex(of: ":") else { return .syntax }
      host = s[..<colon]
      portText = s[s.index(after: colon)...]
      if host.contains(":") { return .syntax }  // a bare IPv6 address needs brackets
    }
    guard let a = parseAddress(host) else { return .address }
    guard !portText.isEmpty, portText.utf8.count <= 5, portText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
      let p = Int(portText), p >= 1, p <= 65535
    else { return .port }
    return .ok(Endpoint(address: a, port: UInt16(p)))
  }

  /// An endpoint; `wildcard` allows the unspecified address (`0.0.0.0`, `::`) for local sockets.
  package static func endpoint(_ v: JSONValue, _ path: String, wildcard: Bool, _ problems: inout Problems) -> Endpoint?
  {
    guard let s = string(v, path, expected: endpointSyntax, &problems) else { return nil }
    switch parseEndpoint(s) {
    case .ok(let e):
      if !wildcard && e.address.isUnspecified {
        problems.add(path, expected: "a unicast address in \(endpointSyntax)", got: describe(v))
        return nil
      }
      return e
    case .syntax: problems.add(path, expected: endpointSyntax, got: describe(v))
    case .address: problems.add(path, expected: "an IP address in \(endpointSyntax)", got: describe(v))
    case .port: problems.add(path, expected: "a port 1-65535 in \(endpointSyntax)", got: describe(v))
    }
    return nil
  }
}

extension IPAddress {
  /// `0.0.0.0` or `::`.
  package var isUnspecified: Bool { self == .v4(0) || self == .v6(0, 0) }
}

extension Prefix {
  /// The prefix with its host bits cleared.
  var network: Prefix {
    // Smart shifts: shifting by the full width gives 0 rather than trapping.
    switch address {
    case .v4(let a):
      let n = min(max(length, 0), 32)
      return Prefix(address: .v4(a & ~(UInt32.max >> n)), length: length)
    case .v6(let h, let l):
      let n = min(max(length, 0), 128)
      return Prefix(
        address: .v6(h & ~(UInt64.max >> n), l & ~(n <= 64 ? UInt64.max : UInt64.max >> (n - 64))), length: length)
    }
  }
}
