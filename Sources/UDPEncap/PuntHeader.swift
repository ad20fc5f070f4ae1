// SPDX-License-Identifier: Apache-2.0
// The header espd puts in front of each IKE datagram it hands to the IKE daemon (and expects back).

/// The fixed header of a punted IKE datagram (INTERFACE.md `ike.punt`): where the datagram came
/// from and which of espd's listen addresses it reached. The IKE message follows it, without the
/// non-ESP marker. A reply sent back to the punt socket carries the same header with the roles as
/// they are for the reply: `source` is espd's listen address to send from, `destination` the peer.
///
/// Byte layout (40 bytes, every field big-endian):
/// ```
///   0        1        2        3        4                 6                 8
///   +--------+--------+--------+--------+-----------------+-----------------+
///   |  'E'   |  'P'   | ver 1  | family |   source port   | destination port|
///   +--------+--------+--------+--------+-----------------+-----------------+
///   8  source address: 16 bytes (IPv4: the 4 address bytes, then 12 zero bytes)
///  24  destination address: 16 bytes (likewise)
///  40  the IKE message (no non-ESP marker)
/// ```
/// `family` is 4 or 6. In a reply, the family byte's high bit (0x84, 0x86: ``raw``) asks espd to
/// send the message exactly as given, without a marker (a NAT-T keepalive). A header with family 0
/// and zeros after it is a hello (``writeHello(to:)``): espd's end of the channel announcing itself.
public struct PuntHeader: Equatable, Sendable {
  /// Header size in bytes.
  public static let size = 40
  /// The magic bytes "EP".
  public static let magic: UInt16 = 0x4550
  /// The layout version.
  public static let version: UInt8 = 1

  /// 4 or 6.
  public var family: UInt8
  /// Send the message as it is, without the non-ESP marker (the family byte's high bit).
  public var raw = false
  /// The family byte's bit that marks a raw reply.
  public static let rawFlag: UInt8 = 0x80
  /// Address bytes in network order: 4 for IPv4, 16 for IPv6 (stored padded to 16).
  public var sourceAddress: (UInt64, UInt64)
  public var sourcePort: UInt16
  public var destinationAddress: (UInt64, UInt64)
  public var destinationPort: UInt16

  /// Creates a header; IPv4 addresses are given as the high 32 bits of the first word.
  public init(
    family: UInt8, sourceAddress: (UInt64, UInt64), sourcePort: UInt16, destinationAddress: (UInt64, UInt64),
    destinationPort: UInt16
  ) {
    self.family = family
    self.sourceAddress = sourceAddress
    self.sourcePort = sourcePort
    self.destinationAddress = destinationAddress
    self.destinationPort = destinationPort
  }

  public static func == (a: PuntHeader, b: PuntHeader) -> Bool {
    a.family == b.family && a.raw == b.raw && a.sourceAddress == b.sourceAddress && a.sourcePort == b.sourcePort
      && a.destinationAddress == b.destinationAddress && a.destinationPort == b.destinationPort
  }

  /// Writes the header at `p` (``size`` bytes).
  public func write(to p: UnsafeMutableRawPointer) {
    p.storeBytes(of: PuntHeader.magic.bigEndian, toByteOffset: 0, as: UInt16.self)
    p.storeBytes(of: PuntHeader.version, toByteOffset: 2, as: UInt8.self)
    p.storeBytes(of: raw ? family | PuntHeader.rawFlag : family, toByteOffset: 3, as: UInt8.self)
    p.storeBytes(of: sourcePort.bigEndian, toByteOffset: 4, as: UInt16.self)
    p.storeBytes(of: destinationPort.bigEndian, toByteOffset: 6, as: UInt16.self)
    p.storeBytes(of: sourceAddress.0.bigEndian, toByteOffset: 8, as: UInt64.self)
    p.storeBytes(of: sourceAddress.1.bigEndian, toByteOffset: 16, as: UInt64.self)
    p.storeBytes(of: destinationAddress.0.bigEndian, toByteOffset: 24, as: UInt64.self)
    p.storeBytes(of: destinationAddress.1.bigEndian, toByteOffset: 32, as: UInt64.self)
  }

  /// Writes a hello at `p` (``size`` bytes): magic, version, family 0, the rest zero.
  public static func writeHello(to p: UnsafeMutableRawPointer) {
    p.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    p.storeBytes(of: magic.bigEndian, toByteOffset: 0, as: UInt16.self)
    p.storeBytes(of: version, toByteOffset: 2, as: UInt8.self)
  }

  /// Parses a header at the start of `bytes`.
  /// - Returns: nil if it is shorter than ``size``, the magic or version differ, or the family is not
  ///   4 or 6 with or without the raw bit (an IPv4 header must have zero address padding).
  public static func parse(_ bytes: UnsafeRawBufferPointer) -> PuntHeader? {
    guard bytes.count >= size, let p = bytes.baseAddress else { return nil }
    func u16(_ o: Int) -> UInt16 { UInt16(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
    func u64(_ o: Int) -> UInt64 { UInt64(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
    guard u16(0) == magic, p.load(fromByteOffset: 2, as: UInt8.self) == version else { return nil }
    let byte = p.load(fromByteOffset: 3, as: UInt8.self)
    let family = byte & ~rawFlag
    let src = (u64(8), u64(16))
    let dst = (u64(24), u64(32))
    switch family {
    case 4:
      guard src.0 & 0xFFFF_FFFF == 0, src.1 == 0, dst.0 & 0xFFFF_FFFF == 0, dst.1 == 0 else { return nil }
    case 6: break
    default: return nil
    }
    var h = PuntHeader(
      family: family, sourceAddress: src, sourcePort: u16(4), destinationAddress: dst, destinationPort: u16(6))
    h.raw = byte & rawFlag != 0
    return h
  }
}
