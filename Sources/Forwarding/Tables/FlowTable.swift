// SPDX-License-Identifier: Apache-2.0
// Inner flows learned from inbound transport-mode packets, for tunnels that share one alias:
// the userspace replacement for strongSwan's connmark (mark by flow, restore on replies).
import ESP

/// A transport-mode flow as the local host sees it: the alias (the remote end's address on the TUN
/// side), the protocol, the remote port and the local port.
public struct FlowKey: TableKey {
  public let alias: MaskedAddress
  public let proto: UInt8
  public let remotePort: UInt16
  public let localPort: UInt16
  public init(alias: IPAddress, proto: UInt8, remotePort: UInt16, localPort: UInt16) {
    self.alias = RouteTable.mask(alias, alias.isV6 ? 128 : 32)
    self.proto = proto
    self.remotePort = remotePort
    self.localPort = localPort
  }
  public var tableHash: UInt64 {
    mix64(alias.tableHash ^ UInt64(proto) << 32 ^ UInt64(remotePort) << 16 ^ UInt64(localPort))
  }
}

/// Flow → tunnel, learned from authenticated inbound packets, looked up for replies.
///
/// Bounded: `capacity` entries in 4-way buckets; a new flow in a full bucket replaces the entry
/// used least recently. Lookups and updates are constant time and never allocate.
/// Not thread-safe; owned by one loop.
public struct FlowTable {
  static let ways = 4
  var keys: [FlowKey?]
  var tunnels: [Int32]
  var lastUsed: [UInt64]
  let bucketMask: Int
  var clock: UInt64 = 0
  /// Flows learned, and flows evicted to make room.
  public private(set) var learned: UInt64 = 0
  public private(set) var evicted: UInt64 = 0

  /// Creates a table of about `capacity` entries (rounded up to a power of two).
  public init(capacity: Int = DataplaneConstants.flowTableCapacity) {
    var buckets = 1
    while buckets * FlowTable.ways < capacity { buckets <<= 1 }
    bucketMask = buckets - 1
    keys = [FlowKey?](repeating: nil, count: buckets * FlowTable.ways)
    tunnels = [Int32](repeating: -1, count: buckets * FlowTable.ways)
    lastUsed = [UInt64](repeating: 0, count: buckets * FlowTable.ways)
  }

  /// Records that `key` belongs to `tunnel` (an authenticated inbound packet arrived on it).
  public mutating func learn(_ key: FlowKey, tunnel: Int32) {
    clock &+= 1
    let base = (Int(truncatingIfNeeded: key.tableHash) & bucketMask) * FlowTable.ways
    var victim = base
    for i in base..<(base + FlowTable.ways) {
      if let k = keys[i] {
        if k == key {
          tunnels[i] = tunnel
          lastUsed[i] = clock
          return
        }
        if keys[victim] != nil && lastUsed[i] < lastUsed[victim] { victim = i }
      } else if keys[victim] != nil {
        victim = i
      }
    }
    if keys[victim] != nil { evicted &+= 1 }
    keys[victim] = key
    tunnels[victim] = tunnel
    lastUsed[victim] = clock
    learned &+= 1
  }

  /// The tunnel that `key` was learned on, or nil.
  public mutating func lookup(_ key: FlowKey) -> Int32? {
    let base = (Int(truncatingIfNeeded: key.tableHash) & bucketMask) * FlowTable.ways
    for i in base..<(base + FlowTable.ways) where keys[i] == key {
      clock &+= 1
      lastUsed[i] = clock
      return tunnels[i]
    }
    return nil
  }

  /// Forgets every flow of `tunnel` (the tunnel was deleted or restarted).
  public mutating func forget(tunnel: Int32) {
    for i in 0..<keys.count where tunnels[i] == tunnel {
      keys[i] = nil
      tunnels[i] = -1
    }
  }

  /// Moves every flow to its tunnel's new index; flows whose tunnel is not in `mapping` are forgotten.
  public mutating func remap(_ mapping: [Int32: Int32]) {
    for i in 0..<keys.count where keys[i] != nil {
      if let n = mapping[tunnels[i]] {
        tunnels[i] = n
      } else {
        keys[i] = nil
        tunnels[i] = -1
      }
    }
  }

  /// Entries it can hold.
  public var capacity: Int { keys.count }

  /// Entries in use.
  public var count: Int { keys.count { $0 != nil } }
}
