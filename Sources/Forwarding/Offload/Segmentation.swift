// SPDX-License-Identifier: Apache-2.0
// TUN offloads, outbound: a packet the kernel handed over with a partial checksum gets it
// completed, and a GSO super-packet (TCP up to 64 KB, or UDP with USO) is cut into the segments
// the kernel would have sent, each with its own IP and TCP/UDP header and full checksums, before
// each is sealed into its own ESP packet. Pure: pointers in, pointers out, every length checked.
import ESP

public enum Segmentation {
  /// Completes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM): the sum over `[start, count)`,
  /// which includes the pseudo-header sum the kernel left in the field, stored at `start + offset`.
  /// - Returns: false (the packet is left alone) when the offsets are outside the packet.
  public static func completeChecksum(_ p: UnsafeMutableRawPointer, count: Int, start: Int, offset: Int) -> Bool {
    let at = start + offset
    guard start >= 0, offset >= 0, at + 2 <= count else { return false }
    let sum = InternetChecksum.add(UnsafeRawPointer(p + start), count: count - start)
    var c = InternetChecksum.finish(sum)
    // A UDP checksum of 0 means "none" (RFC 768); the kernel writes 0xFFFF instead.
    if offset == 6 && c == 0 { c = 0xFFFF }
    p.storeBigEndian(c, at: at)
    return true
  }

  /// What a GSO packet is made of, once checked.
  public struct Plan: Equatable, Sendable {
    public var ipv6: Bool
    public var tcp: Bool
    /// The IP header length (where TCP/UDP starts).
    public var l4Start: Int
    /// IP + TCP/UDP header length: every segment starts with a copy of these bytes.
    public var headerLength: Int
    /// Payload bytes per segment (the last one may carry fewer).
    public var segmentSize: Int
    /// Segments the packet makes.
    public var segments: Int
    /// The longest segment, headers included.
    public var maxSegmentLength: Int { headerLength + segmentSize }
  }

  /// Checks a GSO packet against its header and computes how it splits.
  /// - Returns: nil for anything malformed (the caller drops and counts it).
  public static func plan(_ p: UnsafeRawPointer, count: Int, header h: VirtioNetHeader) -> Plan? {
    let kind = h.gsoKind
    guard kind == VirtioNetHeader.gsoTCPv4 || kind == VirtioNetHeader.gsoTCPv6 || kind == VirtioNetHeader.gsoUDPL4,
      count >= 20, h.gsoSize > 0
    else { return nil }
    let version = p.load(fromByteOffset: 0, as: UInt8.self) >> 4
    let ipv6: Bool
    let l4Start = Int(h.checksumStart)
    switch version {
    case 4:
      let ihl = Int(p.load(fromByteOffset: 0, as: UInt8.self) & 0x0F) * 4
      guard kind != VirtioNetHeader.gsoTCPv6, ihl >= 20, l4Start == ihl else { return nil }
      ipv6 = false
    case 6:
      guard kind != VirtioNetHeader.gsoTCPv4, l4Start >= 40 else { return nil }
      ipv6 = true
    default:
      return nil
    }
    let tcp = kind != VirtioNetHeader.gsoUDPL4
    let l4HeaderLength: Int
    if tcp {
      guard h.checksumOffset == 16, l4Start + 20 <= count else { return nil }
      l4HeaderLength = Int(p.load(fromByteOffset: l4Start + 12, as: UInt8.self) >> 4) * 4
      guard l4HeaderLength >= 20 else { return nil }
    } else {
      guard h.checksumOffset == 6 else { return nil }
      l4HeaderLength = 8
    }
    let headerLength = l4Start + l4HeaderLength
    guard headerLength < count else { return nil }
    let size = Int(h.gsoSize)
    let segments = (count - headerLength + size - 1) / size
    return Plan(
      ipv6: ipv6, tcp: tcp, l4Start: l4Start, headerLength: headerLength, segmentSize: size, segments: segments)
  }

  /// Writes segment `i` of a planned GSO packet to `out` (which must hold ``Plan/maxSegmentLength``
  /// bytes): the headers adjusted (IPv4 ID and length and header checksum, IPv6 payload length,
  /// TCP sequence number and flags, UDP length) and the L4 checksum computed in full.
  /// - Returns: the segment's length.
  public static func writeSegment(
    _ i: Int, of p: UnsafeRawPointer, count: Int, plan: Plan, to out: UnsafeMutableRawPointer
  ) -> Int {
    let payloadStart = plan.headerLength + i * plan.segmentSize
    let payloadLength = min(plan.segmentSize, count - payloadStart)
    let total = plan.headerLength + payloadLength
    out.copyMemory(from: p, byteCount: plan.headerLength)
    (out + plan.headerLength).copyMemory(from: p + payloadStart, byteCount: payloadLength)
    let l4 = plan.l4Start
    let l4Length = total - l4
    if plan.ipv6 {
      out.storeBigEndian(UInt16(total - 40), at: 4)
    } else {
      out.storeBigEndian(UInt16(total), at: 2)
      out.storeBigEndian(p.loadBigEndianUInt16(at: 4) &+ UInt16(truncatingIfNeeded: i), at: 4)
      out.storeBigEndian(UInt16(0), at: 10)
      out.storeBigEndian(InternetChecksum.finish(InternetChecksum.add(UnsafeRawPointer(out), count: l4)), at: 10)
    }
    let checksumAt: Int
    if plan.tcp {
      out.storeBigEndian(
        p.loadBigEndianUInt32(at: l4 + 4) &+ UInt32(truncatingIfNeeded: i * plan.segmentSize), at: l4 + 4)
      var flags = p.load(fromByteOffset: l4 + 13, as: UInt8.self)
      if i > 0 { flags &= ~0x80 }  // CWR on the first segment only
      if i < plan.segments - 1 { flags &= ~(0x01 | 0x08) }  // FIN and PSH on the last only
      out.storeBytes(of: flags, toByteOffset: l4 + 13, as: UInt8.self)
      checksumAt = l4 + 16
    } else {
      out.storeBigEndian(UInt16(l4Length), at: l4 + 4)
      checksumAt = l4 + 6
    }
    out.storeBigEndian(UInt16(0), at: checksumAt)
    let source: IPAddress
    let destination: IPAddress
    if plan.ipv6 {
      source = .v6(out.loadBigEndianUInt64(at: 8), out.loadBigEndianUInt64(at: 16))
      destination = .v6(out.loadBigEndianUInt64(at: 24), out.loadBigEndianUInt64(at: 32))
    } else {
      source = .v4(out.loadBigEndianUInt32(at: 12))
      destination = .v4(out.loadBigEndianUInt32(at: 16))
    }
    var sum = InternetChecksum.addPseudoHeader(
      source: source, destination: destination, protocol: plan.tcp ? 6 : 17, length: l4Length, to: 0)
    sum = InternetChecksum.add(UnsafeRawPointer(out + l4), count: l4Length, to: sum)
    var c = InternetChecksum.finish(sum)
    if !plan.tcp && c == 0 { c = 0xFFFF }
    out.storeBigEndian(c, at: checksumAt)
    return total
  }
}
