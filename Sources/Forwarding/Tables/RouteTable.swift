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
  package var table4: OpenAddressingTable<MaskedAddress>
  package var table6: OpenAddressingTable<MaskedAddress>
  /// Distinct prefix lengths present, longest first.
  var lengths4: [UInt8] = []
  var lengths6: [UInt8] = []
  /// Prefixes present per length (index = length): a length leaves `lengths4/6` with its last prefix.
  var perLength4 = [Int](repeating: 0, count: 33)
  var perLength6 = [Int](repeating: 0, count: 129)

  /// An empty table sized for this many prefixes per family.
  public init(expected4: Int = 0, expected6: Int = 0) {
    table4 = OpenAddressingTable(expected: expected4)
    table6 = OpenAddressingTable(expected: expected6)
  }

  /// Builds the table from (prefix, tunnel index) pairs. A prefix given twice keeps the first.
  public init(_ routes: [(Prefix, Int32)]) {
    self.init(expected4: routes.count { !$0.0.address.isV6 }, expected6: routes.count { $0.0.address.isV6 })
    for (prefix, tunnel) in routes { insert(prefix, tunnel) }
  }

  /// Adds a prefix (a prefix already present keeps its tunnel).
  public mutating func insert(_ prefix: Prefix, _ tunnel: Int32) {
    let length = UInt8(prefix.length)
    let key = RouteTable.mask(prefix.address, length)
    if prefix.address.isV6 {
      guard table6.lookup(key) == nil else { return }
      table6.insert(key, tunnel)
      perLength6[Int(length)] += 1
      if perLength6[Int(length)] == 1 { lengths6 = RouteTable.lengths(perLength6) }
    } else {
      guard table4.lookup(key) == nil else { return }
      table4.insert(key, tunnel)
      perLength4[Int(length)] += 1
      if perLength4[Int(length)] == 1 { lengths4 = RouteTable.lengths(perLength4) }
    }
  }

  /// Removes a prefix if it routes into `tunnel`.
  public mutating func remove(_ prefix: Prefix, _ tunnel: Int32) {
    let length = UInt8(prefix.length)
    let key = RouteTable.mask(prefix.address, length)
    if prefix.address.isV6 {
      guard table6.lookup(key) == tunnel else { return }
      table6.remove(key)
      perLength6[Int(length)] -= 1
      if perLength6[Int(length)] == 0 { lengths6 = RouteTable.lengths(perLength6) }
    } else {
      guard table4.lookup(key) == tunnel else { return }
      table4.remove(key)
      perLength4[Int(length)] -= 1
      if perLength4[Int(length)] == 0 { lengths4 = RouteTable.lengths(perLength4) }
    }
  }

  /// The lengths with a prefix, longest first.
  private static func lengths(_ perLength: [Int]) -> [UInt8] {
    perLength.indices.reversed().filter { perLength[$0] > 0 }.map { UInt8($0) }
  }

  /// Prefixes per family.
  var count4: Int { table4.count }
  var count6: Int { table6.count }

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
