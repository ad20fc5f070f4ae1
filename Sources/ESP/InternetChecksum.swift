// SPDX-License-Identifier: Apache-2.0
// The Internet checksum (RFC 1071) over packet bytes and the TCP/UDP pseudo-headers.

/// The 16-bit one's-complement Internet checksum. RFC 1071.
public enum InternetChecksum {
  /// Adds `count` bytes at `p` to a running one's-complement sum of big-endian 16-bit words.
  /// An odd final byte is padded with a zero byte (RFC 1071 §4.1).
  /// - Returns: the new running sum (fold it with ``finish(_:)``).
  @inlinable
  public static func add(_ p: UnsafeRawPointer, count: Int, to sum: UInt64 = 0) -> UInt64 {
    var s = sum
    var i = 0
    // 32 bits at a time into a 64-bit accumulator: no carry is lost for any packet size.
    while i + 4 <= count {
      s &+= UInt64(p.loadBigEndianUInt32(at: i))
      i += 4
    }
    if i + 2 <= count {
      s &+= UInt64(p.loadBigEndianUInt16(at: i))
      i += 2
    }
    if i < count {
      s &+= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << 8
    }
    return s
  }

  /// Adds one 16-bit big-endian-valued word.
  @inlinable
  public static func add(_ word: UInt16, to sum: UInt64) -> UInt64 { sum &+ UInt64(word) }

  /// Adds the TCP/UDP pseudo-header of RFC 768/793 (IPv4) or RFC 8200 §8.1 (IPv6).
  @inlinable
  public static func addPseudoHeader(
    source: IPAddress, destination: IPAddress, protocol proto: UInt8, length: Int, to sum: UInt64
  ) -> UInt64 {
    var s = sum &+ UInt64(proto) &+ UInt64(UInt32(truncatingIfNeeded: length) >> 16) &+ UInt64(length & 0xFFFF)
    s = addAddress(source, to: s)
    return addAddress(destination, to: s)
  }

  @inlinable
  static func addAddress(_ a: IPAddress, to sum: UInt64) -> UInt64 {
    switch a {
    case .v4(let v): return sum &+ UInt64(v >> 16) &+ UInt64(v & 0xFFFF)
    case .v6(let h, let l): return sum &+ (h >> 32) &+ (h & 0xFFFF_FFFF) &+ (l >> 32) &+ (l & 0xFFFF_FFFF)
    }
  }

  /// Folds a running sum to 16 bits and complements it: the value to store in a checksum field.
  @inlinable
  public static func finish(_ sum: UInt64) -> UInt16 {
    var s = sum
    while s >> 16 != 0 { s = (s & 0xFFFF) &+ (s >> 16) }
    return ~UInt16(truncatingIfNeeded: s)
  }
}
