// SPDX-License-Identifier: Apache-2.0
// A fixed-capacity open-addressing hash table from small keys to tunnel or SA indices.

/// A key the tables can hash cheaply (no SipHash, no allocation).
public protocol TableKey: Equatable {
  /// A well-mixed 64-bit hash.
  var tableHash: UInt64 { get }
}

/// Mixes 64 bits (the SplitMix64 finaliser): cheap, and good enough to spread SPIs and addresses.
func mix64(_ x: UInt64) -> UInt64 {
  var z = x &+ 0x9E37_79B9_7F4A_7C15
  z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
  z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
  return z ^ (z >> 31)
}

/// Key → `Int32` value, linear probing, capacity a power of two. Lookups, inserts and removals are
/// constant time on average and never allocate; the owner of a table (one worker) changes it in
/// place. The control thread keeps the load at most 1/2 by handing workers a larger table built off
/// their threads (``ControlModel``); an insert past 3/4 grows the table in place as a last resort.
public struct OpenAddressingTable<Key: TableKey> {
  var keys: [Key?]
  var values: [Int32]
  private(set) var mask: Int
  public private(set) var count = 0

  /// Creates an empty table sized for `expected` entries (load factor at most 1/2).
  public init(expected: Int) {
    var capacity = 16
    while capacity < expected * 2 { capacity <<= 1 }
    keys = [Key?](repeating: nil, count: capacity)
    values = [Int32](repeating: -1, count: capacity)
    mask = capacity - 1
  }

  /// Entries the table holds before the control thread should hand over a larger one (load 1/2).
  public var comfortableCount: Int { (mask + 1) / 2 }

  /// Inserts or replaces.
  /// - Returns: the previous value for the key, if any.
  @discardableResult
  public mutating func insert(_ key: Key, _ value: Int32) -> Int32? {
    if (count + 1) * 4 > (mask + 1) * 3 { grow() }
    var i = Int(truncatingIfNeeded: key.tableHash) & mask
    while let k = keys[i] {
      if k == key {
        let old = values[i]
        values[i] = value
        return old
      }
      i = (i + 1) & mask
    }
    keys[i] = key
    values[i] = value
    count += 1
    return nil
  }

  /// Removes `key` (backward-shift deletion: no tombstones, probes stay short).
  /// - Returns: its value, or nil if it was absent.
  @discardableResult
  public mutating func remove(_ key: Key) -> Int32? {
    var i = Int(truncatingIfNeeded: key.tableHash) & mask
    while let k = keys[i] {
      if k == key { break }
      i = (i + 1) & mask
    }
    guard keys[i] != nil else { return nil }
    let old = values[i]
    var hole = i
    var j = i
    while true {
      j = (j + 1) & mask
      guard let k = keys[j] else { break }
      let home = Int(truncatingIfNeeded: k.tableHash) & mask
      // Move k into the hole unless its home lies cyclically in (hole, j].
      let stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
      if !stays {
        keys[hole] = k
        values[hole] = values[j]
        hole = j
      }
    }
    keys[hole] = nil
    values[hole] = -1
    count -= 1
    return old
  }

  /// Doubles the capacity (a whole rehash: the fallback when no larger table was handed over).
  private mutating func grow() {
    var bigger = OpenAddressingTable(expected: (mask + 1))
    for (k, v) in zip(keys, values) { if let k { bigger.insert(k, v) } }
    self = bigger
  }

  /// Every (key, value) pair (control path and tests; O(capacity)).
  public var entries: [(Key, Int32)] { zip(keys, values).compactMap { k, v in k.map { ($0, v) } } }

  /// The value for `key`, or nil.
  public func lookup(_ key: Key) -> Int32? {
    var i = Int(truncatingIfNeeded: key.tableHash) & mask
    while let k = keys[i] {
      if k == key { return values[i] }
      i = (i + 1) & mask
    }
    return nil
  }

  /// Bytes of memory the table's arrays use.
  public var memoryBytes: Int { keys.count * (MemoryLayout<Key?>.stride + MemoryLayout<Int32>.stride) }
}

/// An SPI as a table key.
public struct SPIKey: TableKey {
  public let spi: UInt32
  public init(_ spi: UInt32) { self.spi = spi }
  public var tableHash: UInt64 { mix64(UInt64(spi)) }
}
