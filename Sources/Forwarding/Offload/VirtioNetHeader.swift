// SPDX-License-Identifier: Apache-2.0
// The virtio_net_hdr (include/uapi/linux/virtio_net.h) that a TUN opened with IFF_VNET_HDR puts in
// front of every packet, both ways: GSO type and size, and where a partial checksum starts.

/// The 10-byte legacy virtio-net header, in host byte order (little-endian here), as the TUN
/// driver reads and writes it without TUNSETVNETLE/BE.
public struct VirtioNetHeader: Equatable, Sendable {
  public static let size = 10
  /// `flags`: the L4 checksum is partial (the pseudo-header sum sits in the checksum field).
  public static let needsChecksum: UInt8 = 1
  /// `gsoType` values (the ECN bit, 0x80, is masked off by ``gsoKind``).
  public static let gsoNone: UInt8 = 0
  public static let gsoTCPv4: UInt8 = 1
  public static let gsoTCPv6: UInt8 = 4
  public static let gsoUDPL4: UInt8 = 5

  public var flags: UInt8 = 0
  public var gsoType: UInt8 = 0
  public var headerLength: UInt16 = 0
  public var gsoSize: UInt16 = 0
  public var checksumStart: UInt16 = 0
  public var checksumOffset: UInt16 = 0

  public init() {}

  /// Reads a header at `p`.
  public init(_ p: UnsafeRawPointer) {
    flags = p.load(fromByteOffset: 0, as: UInt8.self)
    gsoType = p.load(fromByteOffset: 1, as: UInt8.self)
    headerLength = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
    gsoSize = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
    checksumStart = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
    checksumOffset = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
  }

  /// Writes the header at `p`.
  public func write(to p: UnsafeMutableRawPointer) {
    p.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
    p.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
    p.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
    p.storeBytes(of: gsoSize.littleEndian, toByteOffset: 4, as: UInt16.self)
    p.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
    p.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
  }

  /// Writes an all-zero header (a plain packet, checksums complete) at `p`.
  public static func writeNone(to p: UnsafeMutableRawPointer) {
    p.storeBytes(of: UInt64(0), toByteOffset: 0, as: UInt64.self)
    p.storeBytes(of: UInt16(0), toByteOffset: 8, as: UInt16.self)
  }

  /// The GSO type without the ECN bit.
  public var gsoKind: UInt8 { gsoType & 0x7F }
}
