// SPDX-License-Identifier: Apache-2.0
// Decrypted TCP segments coalesced into GSO writes: which join, and that the kernel's split of
// the result (our Segmentation, as tcp_gso_segment does it) gives back the very segments.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct CoalescingTests {
  /// IPv4 TCP segments of one flow: `sizes` payload bytes each, consecutive sequence numbers and IDs.
  static func segments(
    _ sizes: [Int], sport: UInt8 = 0x10, seq: UInt32 = 5000, flags: [UInt8]? = nil, v6: Bool = false
  ) -> [[UInt8]] {
    var out: [[UInt8]] = []
    var s = seq
    for (i, n) in sizes.enumerated() {
      var tcp: [UInt8] = [0x04, sport, 0x16, 0x2E]
      tcp += [UInt8(s >> 24), UInt8(s >> 16 & 0xFF), UInt8(s >> 8 & 0xFF), UInt8(s & 0xFF), 0, 0, 0x10, 0x01]
      tcp += [0x80, flags?[i] ?? 0x10, 0x01, 0xF5, 0, 0, 0, 0, 1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 3]
      tcp += (0..<n).map { UInt8(truncatingIfNeeded: $0 &+ i) }
      var p: [UInt8]
      if v6 {
        p = [0x60, 0, 0, 0, UInt8(tcp.count >> 8), UInt8(tcp.count & 0xFF), 6, 64]
        p += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        p += [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
      } else {
        let total = 20 + tcp.count
        p = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0x20, UInt8(i), 0x40, 0, 64, 6, 0, 0]
        p += [203, 0, 113, 1, 198, 51, 100, 1]
        let c = InternetChecksum.finish(p.withUnsafeBytes { InternetChecksum.add($0.baseAddress!, count: 20) })
        p[10] = UInt8(c >> 8)
        p[11] = UInt8(c & 0xFF)
      }
      p += tcp
      let l4 = v6 ? 40 : 20
      let src: IPAddress = v6 ? .v6(0x2001_0db8_0000_0000, 1) : .v4(0xCB00_7101)
      let dst: IPAddress = v6 ? .v6(0x2001_0db8_0000_0000, 2) : .v4(0xC633_6401)
      var sum = InternetChecksum.addPseudoHeader(source: src, destination: dst, protocol: 6, length: tcp.count, to: 0)
      sum = p.withUnsafeBytes { InternetChecksum.add($0.baseAddress! + l4, count: tcp.count, to: sum) }
      let c = InternetChecksum.finish(sum)
      p[l4 + 16] = UInt8(c >> 8)
      p[l4 + 17] = UInt8(c & 0xFF)
      out.append(p)
      s &+= UInt32(n)
    }
    return out
  }

  /// Runs the coalescer over `packets`; returns the groups as lists of packet indices.
  func groups(_ packets: [[UInt8]]) -> (TCPCoalescer, [[Int]], Slots) {
    let slots = Slots(packets)
    var c = TCPCoalescer(capacity: 128)
    for i in packets.indices { c.add(i, in: slots.buffers) }
    let members = c.groups.map { g -> [Int] in
      var out: [Int] = []
      var i = g.head
      while i >= 0 {
        out.append(i)
        i = Int(c.next[i])
      }
      return out
    }
    return (c, members, slots)
  }

  final class Slots {
    let buffers: UnsafeMutablePointer<PacketBuffer>
    let memory: [UnsafeMutableRawPointer]
    init(_ packets: [[UInt8]]) {
      buffers = .allocate(capacity: max(1, packets.count))
      memory = packets.map { _ in UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16) }
      for (i, p) in packets.enumerated() {
        var b = PacketBuffer(base: memory[i], capacity: 2048, start: 64, count: 0)
        _ = p.withUnsafeBytes { b.assign($0, at: 64) }
        buffers[i] = b
      }
    }
    deinit {
      memory.forEach { $0.deallocate() }
      buffers.deallocate()
    }
  }

  /// What the kernel makes of a GSO packet written to the TUN: its segments (our Segmentation,
  /// which the segmentation tests hold to tcp_gso_segment's rules).
  static func kernelSplit(_ packet: [UInt8], _ h: VirtioNetHeader) throws -> [[UInt8]] {
    try #require(gsoSplit(packet, h))
  }

  @Test(arguments: [false, true])
  func aRunCoalescesAndTheKernelsSplitGivesItBack(v6: Bool) throws {
    let original = Self.segments([1000, 1000, 1000, 1000, 400], v6: v6)
    let (c, members, slots) = groups(original)
    #expect(members == [[0, 1, 2, 3, 4]])
    let g = c.groups[0]
    var h = VirtioNetHeader()
    TCPCoalescer.finishHead(slots.buffers[0], g, header: &h)
    #expect(h.gsoSize == 1000 && h.headerLength == (v6 ? 72 : 52) && h.flags == VirtioNetHeader.needsChecksum)
    // The GSO packet as the TUN receives it: head packet, then the other payloads.
    var gso = Array(slots.buffers[0].bytes)
    for i in 1..<original.count { gso += original[i][Int(g.headerLength)...] }
    #expect(gso.count == g.totalLength)
    #expect(try Self.kernelSplit(gso, h) == original)
  }

  @Test func whatDoesNotJoin() {
    // a gap in the sequence numbers
    var s = Self.segments([1000, 1000])
    s += Self.segments([1000], seq: 5000 + 2000 + 1)
    #expect(groups(s).1 == [[0, 1], [2]])
    // a shorter segment ends its group; the next one starts a new group
    #expect(groups(Self.segments([1000, 500, 1000])).1 == [[0, 1], [2]])
    // a longer one does not join
    #expect(groups(Self.segments([500, 1000])).1 == [[0], [1]])
    // two flows interleaved: each its own group
    let a = Self.segments([1000, 1000], sport: 1)
    let b = Self.segments([1000, 1000], sport: 2)
    #expect(groups([a[0], b[0], a[1], b[1]]).1 == [[0, 2], [1, 3]])
    // FIN, SYN and RST go alone; PSH ends a group, and joins it
    #expect(groups(Self.segments([1000, 1000, 1000], flags: [0x10, 0x11, 0x10])).1 == [[0], [1], [2]])
    let (c, m, _) = groups(Self.segments([1000, 1000, 1000], flags: [0x10, 0x18, 0x10]))
    #expect(m == [[0, 1], [2]] && c.groups[0].pushSeen)
    // a different ack number or window
    var w = Self.segments([1000, 1000])
    w[1][20 + 14] = 0x02
    #expect(groups(w).1 == [[0], [1]])
    // not TCP, or too short
    #expect(groups([[0x45, 0, 0, 28] + [UInt8](repeating: 0, count: 24), [1, 2, 3]]).1 == [[0], [1]])
  }

  @Test func groupsStopAt64KB() {
    let s = Self.segments([UInt8](repeating: 0, count: 60).map { _ in 1400 })
    let (c, members, _) = groups(s)
    #expect(members.count == 2)
    #expect(c.groups.allSatisfy { $0.totalLength <= 65535 })
    #expect(members[0].count == (65535 - 52) / 1400)
  }

  /// IPv4 UDP datagrams of one flow with `sizes` payload bytes.
  static func datagrams(_ sizes: [Int], dport: UInt8 = 0x35) -> [[UInt8]] {
    sizes.enumerated().map { i, n in
      let l4 = 8 + n
      var p: [UInt8] = [0x45, 0, UInt8((20 + l4) >> 8), UInt8((20 + l4) & 0xFF), 0x30, UInt8(i), 0, 0, 64, 17, 0, 0]
      p += [203, 0, 113, 1, 198, 51, 100, 1]
      let c = InternetChecksum.finish(p.withUnsafeBytes { InternetChecksum.add($0.baseAddress!, count: 20) })
      p[10] = UInt8(c >> 8)
      p[11] = UInt8(c & 0xFF)
      p +=
        [0x13, 0x88, 0x13, dport, UInt8(l4 >> 8), UInt8(l4 & 0xFF), 0, 0]
        + (0..<n).map { UInt8(truncatingIfNeeded: $0 * 3 + i) }
      var sum = InternetChecksum.addPseudoHeader(
        source: .v4(0xCB00_7101), destination: .v4(0xC633_6401), protocol: 17, length: l4, to: 0)
      sum = p.withUnsafeBytes { InternetChecksum.add($0.baseAddress! + 20, count: l4, to: sum) }
      var u = InternetChecksum.finish(sum)
      if u == 0 { u = 0xFFFF }
      p[26] = UInt8(u >> 8)
      p[27] = UInt8(u & 0xFF)
      return p
    }
  }

  @Test func udpDatagramsCoalesceOnlyWithUSOAndSplitBackTheSame() throws {
    let original = Self.datagrams([64, 64, 64, 30])
    let slots = Slots(original)
    var off = TCPCoalescer(capacity: 16)
    for i in original.indices { off.add(i, in: slots.buffers) }
    #expect(off.groups.count == 4)
    var c = TCPCoalescer(capacity: 16, udp: true)
    for i in original.indices { c.add(i, in: slots.buffers) }
    #expect(c.groups.count == 1 && c.groups[0].count == 4)
    var h = VirtioNetHeader()
    TCPCoalescer.finishHead(slots.buffers[0], c.groups[0], header: &h)
    #expect(h.gsoKind == VirtioNetHeader.gsoUDPL4 && h.gsoSize == 64 && h.checksumOffset == 6)
    var gso = Array(slots.buffers[0].bytes)
    for i in 1..<original.count { gso += original[i][28...] }
    #expect(try Self.kernelSplit(gso, h) == original)
    // another port, or a larger datagram after a smaller one: new groups
    let mixed = Self.datagrams([64, 64]) + Self.datagrams([64], dport: 0x36) + Self.datagrams([30, 64])
    let s2 = Slots(mixed)
    var c2 = TCPCoalescer(capacity: 16, udp: true)
    for i in mixed.indices { c2.add(i, in: s2.buffers) }
    #expect(c2.groups.map(\.count) == [3, 1, 1])
  }
}
