// SPDX-License-Identifier: Apache-2.0
// Longest-prefix match of inner destinations over every tunnel's remote_ts (IPv4 and IPv6).
import ESP

/// An address masked to a prefix length, as a table key.
public struct MaskedAddress: TableKey, Hashable {
  public let high: UInt64
  public let low: UInt64
  public let length: UInt8
  public init(high: UInt64, low: UInt64, length: UInt8) {
    self.high = high
    self.low = low
    self.length = length
  }
  public var tableHash: UInt64 { mix64(high ^ mix64(low ^ UInt64(length))) }
}

/// Longest-prefix match: one hash table per family holding every (masked address, length), and the
/// distinct lengths in use, longest first. A lookup probes once per distinct length present (a
/// handful in practice: /32 hosts, a few subnets, /0), whatever the number of tunnels.
public struct RouteTable {
  var table4: OpenAddressingTable<MaskedAddress>
  var table6: OpenAddressingTable<MaskedAddress>
  /// Distinct prefix lengths present, longest first.
  var lengths4: [UInt8] = []
  var lengths6: [UInt8] = []

  /// Builds the table from (prefix, tunnel index) pairs. A prefix given twice keeps the first.
  public init(_ routes: [(Prefix, Int32)]) {
    table4 = OpenAddressingTable(expected: routes.count { !$0.0.address.isV6 })
    table6 = OpenAddressingTable(expected: routes.count { $0.0.address.isV6 })
    var l4 = Set<UInt8>()
    var l6 = Set<UInt8>()
    for (prefix, tunnel) in routes {
      let key = RouteTable.mask(prefix.address, UInt8(prefix.length))
      if prefix.address.isV6 {
        if table6.lookup(key) == nil { table6.insert(key, tunnel) }
        l6.insert(UInt8(prefix.length))
      } else {
        if table4.lookup(key) == nil { table4.insert(key, tunnel) }
        l4.insert(UInt8(prefix.length))
      }
    }
    lengths4 = l4.sorted(by: >)
    lengths6 = l6.sorted(by: >)
  }

  /// The tunnel whose prefix matches `address` longest, or nil.
  public func lookup(_ address: IPAddress) -> Int32? {
    switch address {
    case .v4:
      for length in lengths4 {
        if let t = table4.lookup(RouteTable.mask(address, length)) { return t }
      }
    case .v6:
      for length in lengths6 {
        if let t = table6.lookup(RouteTable.mask(address, length)) { return t }
      }
    }
    return nil
  }

  /// `address` with the bits past `length` cleared.
  public static func mask(_ address: IPAddress, _ length: UInt8) -> MaskedAddress {
    switch address {
    case .v4(let a):
      let m: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - UInt32(min(length, 32)))
      return MaskedAddress(high: UInt64(a & m), low: 0, length: length)
    case .v6(let h, let l):
      let hm: UInt64 = length == 0 ? 0 : (length >= 64 ? ~0 : ~UInt64(0) << (64 - UInt64(length)))
      let lm: UInt64 = length <= 64 ? 0 : (length >= 128 ? ~0 : ~UInt64(0) << (128 - UInt64(length)))
      return MaskedAddress(high: h & hm, low: l & lm, length: length)
    }
  }

  /// Whether `prefix` contains `address`.
  public static func contains(_ prefix: Prefix, _ address: IPAddress) -> Bool {
    guard prefix.address.isV6 == address.isV6 else { return false }
    return mask(address, UInt8(prefix.length)) == mask(prefix.address, UInt8(prefix.length))
  }

  /// Bytes the tables use.
  public var memoryBytes: Int { table4.memoryBytes + table6.memoryBytes }
}
