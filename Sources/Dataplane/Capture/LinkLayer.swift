// SPDX-License-Identifier: Apache-2.0
// Finds the IP packet inside a captured frame, for the link types `espd replay` reads.

/// Capture link types (libpcap DLT_* values as `pcap_datalink` returns them on Linux).
public enum LinkType: Int32, Sendable {
  case null = 0  // BSD loopback: 4-byte host-order address family
  case ethernet = 1  // DLT_EN10MB
  case raw = 12  // DLT_RAW (LINKTYPE_RAW 101 in files)
  case loop = 108  // OpenBSD loopback: 4-byte network-order family
  case linuxSLL = 113  // Linux cooked capture v1
  case ipv4 = 228
  case ipv6 = 229
  case linuxSLL2 = 276  // Linux cooked capture v2

  /// Link types whose frames espd can read.
  public static let supportedNames = "Ethernet, Linux cooked (SLL, SLL2), raw IP, IPv4, IPv6, BSD loopback"
}

/// Where the IP packet sits in a frame.
public enum LinkPayload: Equatable, Sendable {
  /// IP packet at `offset`, `length` bytes.
  case ip(offset: Int, length: Int)
  /// A frame of another protocol (ARP, LLDP, …): not for espd.
  case other
  /// Too short for its link header.
  case truncated
}

public enum LinkLayer {
  static let etherTypeIPv4: UInt16 = 0x0800
  static let etherTypeIPv6: UInt16 = 0x86DD
  static let etherTypeVLAN: UInt16 = 0x8100
  static let etherTypeQinQ: UInt16 = 0x88A8

  /// Locates the IP packet in a captured frame.
  /// - Parameters:
  ///   - frame: the captured bytes.
  ///   - type: the capture's link type.
  public static func payload(_ frame: UnsafeRawBufferPointer, type: LinkType) -> LinkPayload {
    let n = frame.count
    func u16(_ o: Int) -> UInt16 { UInt16(frame[o]) << 8 | UInt16(frame[o + 1]) }
    func ip(_ offset: Int, etherType: UInt16) -> LinkPayload {
      guard etherType == etherTypeIPv4 || etherType == etherTypeIPv6 else { return .other }
      return offset <= n ? .ip(offset: offset, length: n - offset) : .truncated
    }
    switch type {
    case .raw, .ipv4, .ipv6:
      return .ip(offset: 0, length: n)
    case .ethernet:
      guard n >= 14 else { return .truncated }
      var offset = 12
      var etherType = u16(offset)
      // Up to two VLAN tags (802.1Q, 802.1ad).
      while etherType == etherTypeVLAN || etherType == etherTypeQinQ {
        offset += 4
        guard n >= offset + 2 else { return .truncated }
        etherType = u16(offset)
      }
      return ip(offset + 2, etherType: etherType)
    case .linuxSLL:
      guard n >= 16 else { return .truncated }
      return ip(16, etherType: u16(14))
    case .linuxSLL2:
      guard n >= 20 else { return .truncated }
      return ip(20, etherType: u16(0))
    case .null, .loop:
      guard n >= 4 else { return .truncated }
      // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24, 28 or 30 (BSDs), in either byte order.
      let family = UInt32(frame[0]) | UInt32(frame[1]) << 8 | UInt32(frame[2]) << 16 | UInt32(frame[3]) << 24
      let families: Set<UInt32> = [2, 10, 24, 28, 30, 0x0200_0000, 0x0A00_0000, 0x1800_0000, 0x1C00_0000, 0x1E00_0000]
      return families.contains(family) ? .ip(offset: 4, length: n - 4) : .other
    }
  }
}
