// SPDX-License-Identifier: Apache-2.0
// TUN offloads, inbound: decrypted TCP segments of one flow that follow each other are written to
// the TUN as one GSO packet (the kernel's GRO, done before the TUN), so the local TCP stack takes
// one 64 KB packet instead of forty-odd; the rules are tcp_gro_receive's. With USO, same-size UDP
// datagrams of one flow go the same way (the kernel splits them back at the same boundaries).
// Pure: indices in, groups out.
import ESP

/// Groups one batch's decapsulated packets into TUN writes. Allocation-free after init.
public struct TCPCoalescer {
  /// A run of segments of one flow: `head` carries the headers; the others add their payloads.
  public struct Group {
    public var head: Int
    public var tail: Int
    public var count: Int
    /// Payload bytes of every segment but the last (the GSO size).
    public var segmentSize: Int
    /// IP + TCP header length of the head.
    public var headerLength: Int
    public var l4Start: Int
    public var ipv6: Bool
    public var tcp: Bool
    /// The whole IP packet the group makes (headers once, every payload).
    public var totalLength: Int
    var nextSequence: UInt32
    /// No more segments may join (a short or PSH segment ended it).
    var closed: Bool
    var pushSeen: Bool
  }

  /// The most segments one group takes (and writev's iovecs per write).
  public static let maxSegments = 63
  public private(set) var groups: [Group] = []
  /// The next packet of the same group (-1: the last), by packet index.
  public private(set) var next: [Int32]

  /// Whether UDP datagrams are coalesced too (the TUN accepted USO).
  public let udp: Bool

  public init(capacity: Int, udp: Bool = false) {
    self.udp = udp
    groups.reserveCapacity(capacity)
    next = [Int32](repeating: -1, count: capacity)
  }

  public mutating func reset() { groups.removeAll(keepingCapacity: true) }

  /// Offers decapsulated packet `i` of `packets` (an IP packet): it joins the open group of its
  /// flow when it continues it exactly, else starts a group of its own.
  public mutating func add(_ i: Int, in packets: UnsafePointer<PacketBuffer>) {
    let p = packets[i]
    next[i] = -1
    guard let s = TCPCoalescer.segment(p), s.tcp || udp else {
      groups.append(
        Group(
          head: i, tail: i, count: 1, segmentSize: 0, headerLength: 0, l4Start: 0, ipv6: false, tcp: false,
          totalLength: p.count, nextSequence: 0, closed: true, pushSeen: false))
      return
    }
    // Most recent groups first: the flow's open group is usually the last one.
    var g = groups.count - 1
    var looked = 0
    while g >= 0 && looked < 8 {
      if !groups[g].closed && groups[g].segmentSize > 0 && joins(s, p, groups[g], head: packets[groups[g].head]) {
        let tail = groups[g].tail
        next[tail] = Int32(i)
        groups[g].tail = i
        groups[g].count += 1
        groups[g].totalLength += s.payload
        groups[g].nextSequence = s.sequence &+ UInt32(s.payload)
        if s.push { groups[g].pushSeen = true }
        if s.payload < groups[g].segmentSize || s.push || groups[g].count == TCPCoalescer.maxSegments {
          groups[g].closed = true
        }
        return
      }
      g -= 1
      looked += 1
    }
    groups.append(
      Group(
        head: i, tail: i, count: 1, segmentSize: s.coalescable ? s.payload : 0, headerLength: s.headerLength,
        l4Start: s.l4Start, ipv6: s.ipv6, tcp: s.tcp, totalLength: p.count,
        nextSequence: s.sequence &+ UInt32(s.payload),
        closed: !s.coalescable || s.push, pushSeen: s.push))
  }

  /// What matters of a TCP segment (or UDP datagram) for coalescing.
  struct Segment {
    var ipv6: Bool
    var tcp: Bool
    var l4Start: Int
    var headerLength: Int
    var payload: Int
    var sequence: UInt32
    var push: Bool
    /// ACK (with PSH at most), payload present, no IP options or extension headers.
    var coalescable: Bool
  }

  static func segment(_ p: PacketBuffer) -> Segment? {
    guard p.count >= 28 else { return nil }
    let version = p.uint8(at: 0) >> 4
    let ipv6 = version == 6
    let l4Start: Int
    let proto: UInt8
    if version == 4 {
      // No options, not a fragment, the stated length is the buffer's.
      guard p.uint8(at: 0) == 0x45, p.uint16(at: 6) & 0x3FFF == 0, Int(p.uint16(at: 2)) == p.count else { return nil }
      l4Start = 20
      proto = p.uint8(at: 9)
    } else if ipv6 {
      guard p.count >= 48, Int(p.uint16(at: 4)) + 40 == p.count else { return nil }
      l4Start = 40
      proto = p.uint8(at: 6)
    } else {
      return nil
    }
    if proto == IPProtocol.udp {
      guard Int(p.uint16(at: l4Start + 4)) == p.count - l4Start else { return nil }
      let payload = p.count - l4Start - 8
      return Segment(
        ipv6: ipv6, tcp: false, l4Start: l4Start, headerLength: l4Start + 8, payload: payload, sequence: 0,
        push: false, coalescable: payload > 0)
    }
    guard proto == IPProtocol.tcp, l4Start + 20 <= p.count else { return nil }
    let tcpLength = Int(p.uint8(at: l4Start + 12) >> 4) * 4
    guard tcpLength >= 20, l4Start + tcpLength <= p.count else { return nil }
    let flags = p.uint8(at: l4Start + 13)
    let payload = p.count - l4Start - tcpLength
    // Only ACK, optionally PSH: SYN, FIN, RST, URG, ECE and CWR go alone (as tcp_gro_receive flushes).
    let coalescable = flags & ~UInt8(0x08) == 0x10 && payload > 0
    return Segment(
      ipv6: ipv6, tcp: true, l4Start: l4Start, headerLength: l4Start + tcpLength, payload: payload,
      sequence: p.uint32(at: l4Start + 4), push: flags & 0x08 != 0, coalescable: coalescable)
  }

  /// Whether segment `s` continues group `g` exactly: same addresses, ports, IP fields, TCP header
  /// (ack, window, options) but sequence number and PSH; the next sequence number; not longer
  /// than the group's segments; and the result within 64 KB.
  func joins(_ s: Segment, _ p: PacketBuffer, _ g: Group, head h: PacketBuffer) -> Bool {
    guard s.coalescable, s.tcp == g.tcp, s.ipv6 == g.ipv6, s.headerLength == g.headerLength,
      s.payload <= g.segmentSize, !s.tcp || s.sequence == g.nextSequence,
      g.totalLength + s.payload <= 65535 - (g.ipv6 ? 40 : 0)
    else { return false }
    return TCPCoalescer.headersMatch(p, h, s)
  }

  static func headersMatch(_ p: PacketBuffer, _ h: PacketBuffer, _ s: Segment) -> Bool {
    let a = UnsafeRawPointer(p.data)
    let b = UnsafeRawPointer(h.data)
    if s.ipv6 {
      // version, traffic class, flow label; next header and hop limit; addresses
      guard a.load(as: UInt32.self) == b.load(as: UInt32.self),
        a.load(fromByteOffset: 6, as: UInt16.self) == b.load(fromByteOffset: 6, as: UInt16.self),
        bytesEqual(a + 8, b + 8, 32)
      else { return false }
    } else {
      // TOS; DF (flags); TTL and protocol; addresses
      guard a.load(fromByteOffset: 1, as: UInt8.self) == b.load(fromByteOffset: 1, as: UInt8.self),
        a.load(fromByteOffset: 6, as: UInt8.self) & 0x40 == b.load(fromByteOffset: 6, as: UInt8.self) & 0x40,
        a.load(fromByteOffset: 8, as: UInt16.self) == b.load(fromByteOffset: 8, as: UInt16.self),
        bytesEqual(a + 12, b + 12, 8)
      else { return false }
    }
    let l4 = s.l4Start
    guard a.load(fromByteOffset: l4, as: UInt32.self) == b.load(fromByteOffset: l4, as: UInt32.self) else {
      return false  // ports
    }
    guard s.tcp else { return true }
    // ack; data offset, flags (but PSH) and window; options
    guard bytesEqual(a + l4 + 8, b + l4 + 8, 4),
      a.load(fromByteOffset: l4 + 12, as: UInt8.self) == b.load(fromByteOffset: l4 + 12, as: UInt8.self),
      a.load(fromByteOffset: l4 + 13, as: UInt8.self) | 0x08 == b.load(fromByteOffset: l4 + 13, as: UInt8.self) | 0x08,
      bytesEqual(a + l4 + 14, b + l4 + 14, 2),
      s.headerLength - l4 == 20 || bytesEqual(a + l4 + 20, b + l4 + 20, s.headerLength - l4 - 20)
    else { return false }
    return true
  }

  /// Rewrites the head of a group of several segments into the GSO packet's header and fills
  /// `header`: total length (and IPv4 header checksum; the UDP length), PSH if any segment had it,
  /// and the TCP/UDP checksum field set to the pseudo-header sum for the kernel to complete (NEEDS_CSUM).
  public static func finishHead(_ head: PacketBuffer, _ g: Group, header: inout VirtioNetHeader) {
    let d = head.data
    let l4Length = g.totalLength - g.l4Start
    let source: IPAddress
    let destination: IPAddress
    if g.ipv6 {
      d.storeBigEndian(UInt16(g.totalLength - 40), at: 4)
      source = .v6(d.loadBigEndianUInt64(at: 8), d.loadBigEndianUInt64(at: 16))
      destination = .v6(d.loadBigEndianUInt64(at: 24), d.loadBigEndianUInt64(at: 32))
    } else {
      d.storeBigEndian(UInt16(g.totalLength), at: 2)
      d.storeBigEndian(UInt16(0), at: 10)
      d.storeBigEndian(InternetChecksum.finish(InternetChecksum.add(UnsafeRawPointer(d), count: 20)), at: 10)
      source = .v4(d.loadBigEndianUInt32(at: 12))
      destination = .v4(d.loadBigEndianUInt32(at: 16))
    }
    if g.pushSeen {
      d.storeBytes(
        of: d.load(fromByteOffset: g.l4Start + 13, as: UInt8.self) | 0x08, toByteOffset: g.l4Start + 13, as: UInt8.self)
    }
    if !g.tcp { d.storeBigEndian(UInt16(l4Length), at: g.l4Start + 4) }
    let pseudo = InternetChecksum.addPseudoHeader(
      source: source, destination: destination, protocol: g.tcp ? IPProtocol.tcp : IPProtocol.udp, length: l4Length,
      to: 0)
    let checksumOffset = g.tcp ? 16 : 6
    d.storeBigEndian(~InternetChecksum.finish(pseudo), at: g.l4Start + checksumOffset)
    header = VirtioNetHeader()
    header.flags = VirtioNetHeader.needsChecksum
    header.gsoType = !g.tcp ? VirtioNetHeader.gsoUDPL4 : g.ipv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4
    header.headerLength = UInt16(g.headerLength)
    header.gsoSize = UInt16(g.segmentSize)
    header.checksumStart = UInt16(g.l4Start)
    header.checksumOffset = UInt16(checksumOffset)
  }
}

/// `n` bytes at `a` equal those at `b` (memcmp's answer, without libc: Forwarding imports no I/O).
@inline(__always)
private func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
  var i = 0
  while i + 8 <= n {
    if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
      return false
    }
    i += 8
  }
  while i < n {
    if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
    i += 1
  }
  return true
}
