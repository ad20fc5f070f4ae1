// SPDX-License-Identifier: Apache-2.0
// TUN offloads: GSO packets cut into the segments the kernel would have sent, checksums completed.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct SegmentationTests {
  /// The RFC 1071 sum of a byte array, independently of the code under test (16 bits at a time).
  static func sum16(_ b: [UInt8]) -> UInt32 {
    var s: UInt32 = 0
    var i = 0
    while i + 1 < b.count {
      s += UInt32(b[i]) << 8 | UInt32(b[i + 1])
      i += 2
    }
    if i < b.count { s += UInt32(b[i]) << 8 }
    while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
    return s
  }

  /// Whether a TCP/UDP segment's checksum verifies (the sum over pseudo-header and segment is 0xFFFF).
  static func l4ChecksumOK(_ p: [UInt8], l4: Int, proto: UInt8, v6: Bool) -> Bool {
    let length = p.count - l4
    var pseudo: [UInt8] = v6 ? Array(p[8..<40]) : Array(p[12..<20])
    pseudo += [0, proto, UInt8(length >> 8), UInt8(length & 0xFF)]
    return sum16(pseudo + Array(p[l4...])) == 0xFFFF
  }

  static func be16(_ p: [UInt8], _ at: Int) -> Int { Int(p[at]) << 8 | Int(p[at + 1]) }
  static func be32(_ p: [UInt8], _ at: Int) -> UInt32 {
    UInt32(p[at]) << 24 | UInt32(p[at + 1]) << 16 | UInt32(p[at + 2]) << 8 | UInt32(p[at + 3])
  }

  /// An IPv4 or IPv6 TCP super-packet with `payload` bytes, flags PSH|ACK|FIN|CWR, seq 1000.
  static func tcpSuperPacket(v6: Bool, payload: Int) -> [UInt8] {
    var tcp: [UInt8] = [
      0x04, 0xD2, 0x16, 0x2E, 0, 0, 0x03, 0xE8, 0, 0, 0, 1, 0x80, 0x80 | 0x10 | 0x08 | 0x01, 0xFF, 0xFF, 0, 0, 0, 0,
    ]
    tcp += [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]  // NOP NOP timestamps: a 32-byte header
    let data = (0..<payload).map { UInt8(truncatingIfNeeded: $0 * 7) }
    let l4 = tcp + data
    if v6 {
      var ip: [UInt8] = [0x60, 0, 0, 0, UInt8(l4.count >> 8), UInt8(l4.count & 0xFF), 6, 64]
      ip += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
      ip += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
      return ip + l4
    }
    let total = 20 + l4.count
    return [
      0x45, 0, UInt8(total >> 8 & 0xFF), UInt8(total & 0xFF), 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 1, 203,
      0, 113, 1,
    ] + l4
  }

  func split(_ packet: [UInt8], _ h: VirtioNetHeader) -> [[UInt8]]? { gsoSplit(packet, h) }

  @Test(arguments: [false, true])
  func tcpSuperPacketsSplitLikeTheKernel(v6: Bool) throws {
    let mss = 1000
    let packet = Self.tcpSuperPacket(v6: v6, payload: 4 * mss + 123)
    var h = VirtioNetHeader()
    h.flags = VirtioNetHeader.needsChecksum
    h.gsoType = v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4
    h.gsoSize = UInt16(mss)
    h.checksumStart = v6 ? 40 : 20
    h.checksumOffset = 16
    let segments = try #require(split(packet, h))
    #expect(segments.count == 5)
    let l4 = v6 ? 40 : 20
    var payload: [UInt8] = []
    for (i, s) in segments.enumerated() {
      let last = i == segments.count - 1
      #expect(s.count == l4 + 32 + (last ? 123 : mss))
      if v6 {
        #expect(Self.be16(s, 4) == s.count - 40)
      } else {
        #expect(Self.be16(s, 2) == s.count && Self.be16(s, 4) == 0x1234 + i)
        #expect(Self.sum16(Array(s[0..<20])) == 0xFFFF, "IPv4 header checksum of segment \(i)")
      }
      #expect(Self.be32(s, l4 + 4) == 1000 + UInt32(i * mss))
      let flags = s[l4 + 13]
      #expect((flags & 0x80 != 0) == (i == 0), "CWR on the first segment only")
      #expect((flags & 0x09 != 0) == last, "FIN and PSH on the last segment only")
      #expect(flags & 0x10 != 0)
      #expect(Self.l4ChecksumOK(s, l4: l4, proto: 6, v6: v6), "TCP checksum of segment \(i)")
      #expect(Array(s[(l4 + 12)..<(l4 + 13)]) == [0x80])
      payload += s[(l4 + 32)...]
    }
    #expect(payload == Array(packet[(l4 + 32)...]))
  }

  @Test func udpSuperPacketsSplitWithTheirLengths() throws {
    let data = (0..<2500).map { UInt8(truncatingIfNeeded: $0) }
    let l4 = [0x13, 0x88, 0x13, 0x89, 0, 0, 0, 0] + data
    let total = 20 + l4.count
    let packet: [UInt8] =
      [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2] + l4
    var h = VirtioNetHeader()
    h.gsoType = VirtioNetHeader.gsoUDPL4
    h.gsoSize = 1000
    h.checksumStart = 20
    h.checksumOffset = 6
    let segments = try #require(split(packet, h))
    #expect(segments.map(\.count) == [1028, 1028, 528])
    for s in segments {
      #expect(Self.be16(s, 24) == s.count - 20)
      #expect(Self.l4ChecksumOK(s, l4: 20, proto: 17, v6: false))
    }
  }

  @Test func partialChecksumsAreCompleted() {
    // A TCP packet whose checksum field holds the pseudo-header sum, as the kernel leaves it.
    var p = Self.tcpSuperPacket(v6: false, payload: 301)
    var pseudo: [UInt8] = Array(p[12..<20]) + [0, 6, UInt8((p.count - 20) >> 8), UInt8((p.count - 20) & 0xFF)]
    let partial = Self.sum16(pseudo)
    p[36] = UInt8(partial >> 8)
    p[37] = UInt8(partial & 0xFF)
    let ok = p.withUnsafeMutableBytes {
      Segmentation.completeChecksum($0.baseAddress!, count: $0.count, start: 20, offset: 16)
    }
    #expect(ok && Self.l4ChecksumOK(p, l4: 20, proto: 6, v6: false))
    pseudo.removeAll()
    #expect(
      !p.withUnsafeMutableBytes {
        Segmentation.completeChecksum($0.baseAddress!, count: $0.count, start: 20, offset: 9999)
      })
  }

  @Test func malformedGSOPacketsAreRefused() {
    let packet = Self.tcpSuperPacket(v6: false, payload: 3000)
    var h = VirtioNetHeader()
    h.gsoType = VirtioNetHeader.gsoTCPv4
    h.gsoSize = 1000
    h.checksumStart = 20
    h.checksumOffset = 16
    #expect(split(packet, h) != nil)
    var bad = h
    bad.gsoSize = 0
    #expect(split(packet, bad) == nil)
    bad = h
    bad.checksumStart = 24  // not where TCP starts
    #expect(split(packet, bad) == nil)
    bad = h
    bad.gsoType = VirtioNetHeader.gsoTCPv6  // an IPv4 packet
    #expect(split(packet, bad) == nil)
    bad = h
    bad.checksumOffset = 6
    #expect(split(packet, bad) == nil)
    #expect(split(Array(packet[0..<40]), h) == nil)  // headers only, no payload
    var header = [UInt8](repeating: 0, count: 10)
    var v = h
    v.headerLength = 52
    header.withUnsafeMutableBytes { v.write(to: $0.baseAddress!) }
    #expect(header.withUnsafeBytes { VirtioNetHeader($0.baseAddress!) } == v)
  }
}

/// The segments Segmentation cuts a GSO packet into, or nil when it refuses the packet.
func gsoSplit(_ packet: [UInt8], _ h: VirtioNetHeader) -> [[UInt8]]? {
  var copy = packet
  return copy.withUnsafeMutableBytes { b -> [[UInt8]]? in
    guard let plan = Segmentation.plan(b.baseAddress!, count: b.count, header: h) else { return nil }
    var out: [[UInt8]] = []
    let slot = UnsafeMutableRawPointer.allocate(byteCount: plan.maxSegmentLength, alignment: 8)
    defer { slot.deallocate() }
    for i in 0..<plan.segments {
      let n = Segmentation.writeSegment(i, of: b.baseAddress!, count: b.count, plan: plan, to: slot)
      out.append(Array(UnsafeRawBufferPointer(start: slot, count: n)))
    }
    return out
  }
}
