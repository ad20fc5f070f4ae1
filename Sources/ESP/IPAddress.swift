// SPDX-License-Identifier: Apache-2.0
// IPv4 and IPv6 addresses as plain values, for inner packets and selectors.

/// An IPv4 or IPv6 address, held as integers in host order (no allocation, cheap to compare).
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
  /// An IPv4 address.
  case v4(UInt32)
  /// An IPv6 address as its high and low 64 bits.
  case v6(UInt64, UInt64)

  /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (with `::`; no zone).
  public init?(_ text: some StringProtocol) {
    if text.contains(":") {
      guard let v = IPAddress.parseV6(String(text)) else { return nil }
      self = .v6(v.0, v.1)
    } else {
      let parts = text.split(separator: ".", omittingEmptySubsequences: false)
      guard parts.count == 4 else { return nil }
      var v: UInt32 = 0
      for p in parts {
        guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let b = UInt8(p) else { return nil }
        v = v << 8 | UInt32(b)
      }
      self = .v4(v)
    }
  }

  /// Whether this is an IPv6 address.
  public var isV6: Bool { if case .v6 = self { true } else { false } }

  /// The address bytes in network order (4 or 16).
  public var bytes: [UInt8] {
    switch self {
    case .v4(let a): withUnsafeBytes(of: a.bigEndian) { Array($0) }
    case .v6(let h, let l):
      withUnsafeBytes(of: h.bigEndian) { Array($0) } + withUnsafeBytes(of: l.bigEndian) { Array($0) }
    }
  }

  public var description: String {
    switch self {
    case .v4(let a): return "\(a >> 24).\(a >> 16 & 0xFF).\(a >> 8 & 0xFF).\(a & 0xFF)"
    case .v6(let h, let l):
      let g = (0..<8).map { i -> UInt16 in UInt16(truncatingIfNeeded: (i < 4 ? h : l) >> (48 - 16 * UInt64(i % 4))) }
      // RFC 5952: compress the longest run (at least two) of zero groups.
      var best = (start: -1, length: 0)
      var i = 0
      while i < 8 {
        if g[i] == 0 {
          var j = i
          while j < 8 && g[j] == 0 { j += 1 }
          if j - i > best.length && j - i >= 2 { best = (i, j - i) }
          i = j
        } else {
          i += 1
        }
      }
      let hex = g.map { String($0, radix: 16) }
      if best.start < 0 { return hex.joined(separator: ":") }
      return hex[0..<best.start].joined(separator: ":") + "::"
        + hex[(best.start + best.length)...].joined(separator: ":")
    }
  }

  private static func parseV6(_ s: String) -> (UInt64, UInt64)? {
    let halves = s.components(separatedBy: "::")
    guard halves.count <= 2 else { return nil }
    func groups(_ t: String) -> [UInt16]? {
      if t.isEmpty { return [] }
      var out: [UInt16] = []
      for part in t.split(separator: ":", omittingEmptySubsequences: false) {
        guard !part.isEmpty, part.count <= 4, let v = UInt16(part, radix: 16) else { return nil }
        out.append(v)
      }
      return out
    }
    guard let head = groups(halves[0]) else { return nil }
    var all = head
    if halves.count == 2 {
      guard let tail = groups(halves[1]), head.count + tail.count <= 7 else { return nil }
      all += [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
    }
    guard all.count == 8 else { return nil }
    var h: UInt64 = 0
    var l: UInt64 = 0
    for i in 0..<4 { h = h << 16 | UInt64(all[i]) }
    for i in 4..<8 { l = l << 16 | UInt64(all[i]) }
    return (h, l)
  }
}

extension String {
  /// Splits on a separator string (Foundation-free `components(separatedBy:)`).
  func components(separatedBy sep: String) -> [String] {
    var out: [String] = []
    var rest = Substring(self)
    while let r = rest.firstRange(of: sep) {
      out.append(String(rest[..<r.lowerBound]))
      rest = rest[r.upperBound...]
    }
    out.append(String(rest))
    return out
  }
}
