// SPDX-License-Identifier: Apache-2.0
// Transport-mode header strip/rebuild, checksum rules (RFC 768, RFC 3948 §3.1.2), IP header parsing.
import Testing

@testable import ESP

@Suite struct TransportModeTests {
  @Test func checksumMatchesNaiveOverRandomData() {
    var rng = SplitMix(seed: 7)
    for n in 0..<600 {
      let bytes = rng.bytes(n)
      let fast = bytes.withUnsafeBytes {
        InternetChecksum.finish(InternetChecksum.add($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: n))
      }
      #expect(fast == Packets.naiveChecksum(bytes), "length \(n)")
    }
  }

  @Test func ipv4UDPChecksumZeroStaysZero() {
    var inner = Packets.udp(version: 4, payload: [1, 2, 3])
    inner[26] = 0
    inner[27] = 0
    let slot = Slot()
    var p = slot.packet(inner)
    #expect(TransportMode.strip(&p) != nil)
    #expect(TransportMode.rebuild(&p, proto: 17, source: .v4(0xC633_6482), destination: .v4(0xC633_6401)))
    #expect(p.uint16(at: 20 + 6) == 0)
  }

  @Test func ipv6UDPChecksumIsAlwaysComputed() {
    var inner = Packets.udp(version: 6, payload: [1, 2, 3])
    inner[46] = 0
    inner[47] = 0
    let slot = Slot()
    var p = slot.packet(inner)
    #expect(TransportMode.strip(&p) != nil)
    #expect(
      TransportMode.rebuild(&p, proto: 17, source: IPAddress("2001:db8::1")!, destination: IPAddress("2001:db8::2")!))
    #expect(p.uint16(at: 40 + 6) != 0)
    #expect(Packets.checksumIsValid(Array(p.bytes)))
  }

  @Test func icmpIsLeftAlone() {
    let icmp: [UInt8] = [8, 0, 0xAB, 0xCD, 0, 1, 0, 1, 0x61, 0x62]
    let slot = Slot()
    var p = slot.packet(icmp)
    #expect(TransportMode.rebuild(&p, proto: 1, source: .v4(1), destination: .v4(2)))
    #expect(Array(p.bytes[20...]) == icmp)
    #expect(Packets.naiveChecksum(Array(p.bytes[0..<20])) == 0)  // the new IPv4 header is valid
  }

  @Test func stripRefusesWhatItCannotCarry() {
    let slot = Slot()
    var frag = Packets.udp(version: 4, payload: [1, 2, 3])
    frag[6] = 0x20  // More Fragments
    var p = slot.packet(frag)
    #expect(TransportMode.strip(&p) == nil)
    var ext = Packets.udp(version: 6, payload: [1])
    ext[6] = 0  // Hop-by-Hop Options extension header
    var q = slot.packet(ext)
    #expect(TransportMode.strip(&q) == nil)
    var short = slot.packet([0x45, 0, 0, 20])
    #expect(TransportMode.strip(&short) == nil)
    #expect(q.count == ext.count)  // unchanged on refusal
  }

  @Test func rebuildRefusals() {
    let slot = Slot()
    var p = slot.packet([1, 2, 3])
    #expect(!TransportMode.rebuild(&p, proto: 17, source: .v4(1), destination: .v4(2)))  // shorter than UDP header
    #expect(!TransportMode.rebuild(&p, proto: 1, source: .v4(1), destination: IPAddress("2001:db8::1")!))
    var tight = PacketBuffer(base: slot.base, capacity: Slot.size, start: 10, count: 8)
    #expect(!TransportMode.rebuild(&tight, proto: 1, source: .v4(1), destination: .v4(2)))
  }

  @Test func ipHeaderParse() {
    let v4 = Packets.udp(version: 4, payload: [9])
    let h4 = v4.withUnsafeBytes { IPHeader.parse($0) }
    #expect(
      h4
        == IPHeader(
          version: 4, headerLength: 20, totalLength: 29, proto: 17, source: IPAddress("192.0.2.10")!,
          destination: IPAddress("198.51.100.20")!))
    let v6 = Packets.udp(version: 6, payload: [9])
    let h6 = v6.withUnsafeBytes { IPHeader.parse($0) }
    #expect(h6?.source == IPAddress("2001:db8::a") && h6?.totalLength == 49)
    // Stated lengths beyond the bytes, bad IHL, other versions: nil.
    var bad = v4
    bad[3] = 200
    #expect(bad.withUnsafeBytes { IPHeader.parse($0) } == nil)
    bad = v4
    bad[0] = 0x44
    #expect(bad.withUnsafeBytes { IPHeader.parse($0) } == nil)
    #expect([UInt8]([0x55]).withUnsafeBytes { IPHeader.parse($0) } == nil)
    #expect([UInt8]().withUnsafeBytes { IPHeader.parse($0) } == nil)
  }

  @Test(arguments: [
    "192.0.2.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::", "::1", "2001:db8:0:1:1:1:1:1", "fe80::1:2",
  ])
  func addressRoundTrip(_ text: String) {
    let a = IPAddress(text)
    #expect(a?.description == text)
  }

  @Test(arguments: [
    "192.0.2", "192.0.2.256", "1.2.3.4.5", "2001:db8:::1", "2001:db8::1::2", "12345::", "", "a.b.c.d",
    "1:2:3:4:5:6:7:8:9",
  ])
  func addressRejects(_ text: String) {
    #expect(IPAddress(text) == nil)
  }
}
