// SPDX-License-Identifier: Apache-2.0
// Parses the fixed IPv4 (RFC 791) and IPv6 (RFC 8200) headers of inner packets.

/// The fields of an inner packet's IP header that ESP and the flow table need.
public struct IPHeader: Equatable, Sendable {
  /// 4 or 6.
  public var version: UInt8
  /// Bytes of IP header (IPv4: IHL × 4; IPv6: 40, extension headers not included).
  public var headerLength: Int
  /// Bytes of the whole packet as the header states it.
  public var totalLength: Int
  /// IPv4 Protocol or IPv6 Next Header.
  public var proto: UInt8
  public var source: IPAddress
  public var destination: IPAddress

  /// Creates a header value from its fields.
  @inlinable
  public init(
    version: UInt8, headerLength: Int, totalLength: Int, proto: UInt8, source: IPAddress, destination: IPAddress
  ) {
    self.version = version
    self.headerLength = headerLength
    self.totalLength = totalLength
    self.proto = proto
    self.source = source
    self.destination = destination
  }

  /// Fixed header sizes.
  public static let ipv4MinimumSize = 20  // RFC 791 §3.1
  public static let ipv6Size = 40  // RFC 8200 §3

  /// Parses the IP header at the start of `bytes`.
  /// - Returns: the header, or nil if the bytes are not a whole IPv4 or IPv6 packet (version,
  ///   lengths and IHL are checked; trailing bytes beyond the stated length are allowed).
  @inlinable
  public static func parse(_ bytes: UnsafeRawBufferPointer) -> IPHeader? {
    guard let p = bytes.baseAddress, bytes.count >= 1 else { return nil }
    let n = bytes.count
    switch p.load(as: UInt8.self) >> 4 {
    case 4:
      guard n >= ipv4MinimumSize else { return nil }
      let ihl = Int(p.load(as: UInt8.self) & 0x0F) * 4
      let total = Int(p.loadBigEndianUInt16(at: 2))
      guard ihl >= ipv4MinimumSize, total >= ihl, total <= n else { return nil }
      return IPHeader(
        version: 4, headerLength: ihl, totalLength: total, proto: p.load(fromByteOffset: 9, as: UInt8.self),
        source: .v4(p.loadBigEndianUInt32(at: 12)), destination: .v4(p.loadBigEndianUInt32(at: 16)))
    case 6:
      guard n >= ipv6Size else { return nil }
      let total = ipv6Size + Int(p.loadBigEndianUInt16(at: 4))
      guard total <= n else { return nil }
      return IPHeader(
        version: 6, headerLength: ipv6Size, totalLength: total, proto: p.load(fromByteOffset: 6, as: UInt8.self),
        source: .v6(p.loadBigEndianUInt64(at: 8), p.loadBigEndianUInt64(at: 16)),
        destination: .v6(p.loadBigEndianUInt64(at: 24), p.loadBigEndianUInt64(at: 32)))
    default:
      return nil
    }
  }
}
