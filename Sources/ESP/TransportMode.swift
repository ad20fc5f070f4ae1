// SPDX-License-Identifier: Apache-2.0
// Transport mode (RFC 4303 §3.1.1): strip the IP header before sealing, rebuild it after opening,
// and recompute the TCP/UDP checksum for the addresses the receiver uses (RFC 3948 §3.1.2).

/// IANA protocol numbers transport mode treats specially.
public enum IPProtocol {
  public static let tcp: UInt8 = 6
  public static let udp: UInt8 = 17
  public static let icmp: UInt8 = 1
  public static let icmpv6: UInt8 = 58
}

/// The packet-shaping half of transport mode. Pure; works in place.
public enum TransportMode {
  /// Removes the IP header of an outbound packet so that only its upper-layer payload is sealed.
  /// - Parameter packet: a whole IP packet; on success, its payload (stated length only).
  /// - Returns: the removed header's fields (the payload's protocol is `proto`), or nil if the packet
  ///   is not a whole IPv4/IPv6 packet, is an IPv4 fragment, or is IPv6 with an extension header
  ///   (transport mode here carries TCP, UDP and ICMP segments only).
  public static func strip(_ packet: inout PacketBuffer) -> IPHeader? {
    guard let h = IPHeader.parse(packet.bytes) else { return nil }
    if h.version == 4 {
      // More Fragments set or a non-zero offset: a fragment cannot be re-addressed and checksummed.
      guard packet.uint16(at: 6) & 0x3FFF == 0 else { return nil }
    } else {
      switch h.proto {
      case IPProtocol.tcp, IPProtocol.udp, IPProtocol.icmpv6: break
      default: return nil
      }
    }
    packet.start += h.headerLength
    packet.count = h.totalLength - h.headerLength
    return h
  }

  /// Rebuilds an IP packet around a decrypted transport-mode payload: writes an IPv4 or IPv6 header
  /// into the headroom and recomputes the TCP or UDP checksum over the new pseudo-header (an IPv4
  /// UDP checksum of 0 stays 0, RFC 768; ICMP has no pseudo-header and is left alone).
  /// - Parameters:
  ///   - packet: the upper-layer segment; on success, the whole IP packet.
  ///   - proto: the Next Header from the ESP trailer.
  ///   - source: the address the packet appears to come from (the tunnel's alias).
  ///   - destination: the local address (same family as `source`).
  /// - Returns: false (packet unchanged) if the families differ, the headroom is short, the segment
  ///   is too long for an IP packet, or too short for its TCP/UDP header.
  public static func rebuild(
    _ packet: inout PacketBuffer, proto: UInt8, source: IPAddress, destination: IPAddress
  ) -> Bool {
    guard source.isV6 == destination.isV6 else { return false }
    let length = packet.count
    let headerLength = source.isV6 ? IPHeader.ipv6Size : IPHeader.ipv4MinimumSize
    guard packet.headroom >= headerLength, length + (source.isV6 ? 0 : headerLength) <= 0xFFFF else { return false }
    guard fixChecksum(packet, proto: proto, source: source, destination: destination) else { return false }

    packet.start -= headerLength
    packet.count += headerLength
    let p = packet.data
    switch (source, destination) {
    case (.v4(let s), .v4(let d)):
      p.storeBigEndian(UInt16(0x4500), at: 0)  // version 4, IHL 5, DSCP/ECN 0
      p.storeBigEndian(UInt16(length + headerLength), at: 2)
      p.storeBigEndian(UInt32(0x0000_4000), at: 4)  // ID 0, Don't Fragment (RFC 6864 §4.1)
      p.storeBigEndian(UInt16(64) << 8 | UInt16(proto), at: 8)  // TTL 64, protocol
      p.storeBigEndian(UInt16(0), at: 10)
      p.storeBigEndian(s, at: 12)
      p.storeBigEndian(d, at: 16)
      p.storeBigEndian(InternetChecksum.finish(InternetChecksum.add(p, count: 20)), at: 10)
    case (.v6(let sh, let sl), .v6(let dh, let dl)):
      p.storeBigEndian(UInt32(0x6000_0000), at: 0)  // version 6, traffic class 0, flow label 0
      p.storeBigEndian(UInt16(length), at: 4)
      p.storeBigEndian(UInt16(proto) << 8 | 64, at: 6)  // next header, hop limit 64
      p.storeBigEndian(sh, at: 8)
      p.storeBigEndian(sl, at: 16)
      p.storeBigEndian(dh, at: 24)
      p.storeBigEndian(dl, at: 32)
    default:
      return false
    }
    return true
  }

  /// Recomputes the TCP or UDP checksum of `segment` for a new pseudo-header (RFC 3948 §3.1.2 leaves
  /// this to the receiver of a transport-mode packet that crossed a NAT).
  /// - Returns: false if the segment is shorter than its TCP or UDP header.
  public static func fixChecksum(
    _ segment: PacketBuffer, proto: UInt8, source: IPAddress, destination: IPAddress
  ) -> Bool {
    let field: Int
    switch proto {
    case IPProtocol.tcp:
      guard segment.count >= 20 else { return false }
      field = 16
    case IPProtocol.udp:
      guard segment.count >= 8 else { return false }
      // RFC 768: an IPv4 UDP checksum of 0 means "none" and stays 0. (IPv6 requires one.)
      if !source.isV6 && segment.uint16(at: 6) == 0 { return true }
      field = 6
    case IPProtocol.icmpv6:
      // ICMPv6 does have a pseudo-header (RFC 4443 §2.3).
      guard segment.count >= 4 else { return false }
      field = 2
    default:
      return true
    }
    segment.setUInt16(0, at: field)
    var sum = InternetChecksum.addPseudoHeader(
      source: source, destination: destination, protocol: proto, length: segment.count, to: 0)
    sum = InternetChecksum.add(segment.data, count: segment.count, to: sum)
    var c = InternetChecksum.finish(sum)
    if proto == IPProtocol.udp && c == 0 { c = 0xFFFF }  // RFC 768: a computed 0 is sent as all ones
    segment.setUInt16(c, at: field)
    return true
  }
}
