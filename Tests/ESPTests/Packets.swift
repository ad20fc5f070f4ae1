// SPDX-License-Identifier: Apache-2.0
// Builds IPv4/IPv6 UDP and TCP test packets, and checks their checksums with a naive implementation.
@testable import ESP

enum Packets {
  static let src4: [UInt8] = [192, 0, 2, 10]
  static let dst4: [UInt8] = [198, 51, 100, 20]
  static let src6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0x0a]
  static let dst6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 1] + [UInt8](repeating: 0, count: 9) + [0x14]

  static func udp(version: Int, payload: [UInt8], sport: UInt16 = 1701, dport: UInt16 = 1701) -> [UInt8] {
    var seg = be16(sport) + be16(dport) + be16(UInt16(8 + payload.count)) + [0, 0] + payload
    return ip(version: version, proto: 17, segment: &seg, checksumAt: 6)
  }

  static func tcp(version: Int, payload: [UInt8]) -> [UInt8] {
    var seg = be16(40000) + be16(1701) + [0, 0, 0, 1, 0, 0, 0, 0] + [0x50, 0x18] + be16(512) + [0, 0, 0, 0] + payload
    return ip(version: version, proto: 6, segment: &seg, checksumAt: 16)
  }

  static func ip(version: Int, proto: UInt8, segment seg: inout [UInt8], checksumAt field: Int) -> [UInt8] {
    let (s, d) = version == 4 ? (src4, dst4) : (src6, dst6)
    let c = naiveChecksum(pseudo(s, d, proto, seg.count) + seg)
    seg[field] = UInt8(c >> 8)
    seg[field + 1] = UInt8(c & 0xFF)
    if version == 4 {
      var h: [UInt8] = [0x45, 0] + be16(UInt16(20 + seg.count)) + [0x12, 0x34, 0, 0, 64, proto, 0, 0] + s + d
      let hc = naiveChecksum(h)
      h[10] = UInt8(hc >> 8)
      h[11] = UInt8(hc & 0xFF)
      return h + seg
    }
    return [0x60, 0, 0, 0] + be16(UInt16(seg.count)) + [proto, 64] + s + d + seg
  }

  static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }

  static func pseudo(_ s: [UInt8], _ d: [UInt8], _ proto: UInt8, _ length: Int) -> [UInt8] {
    s + d
      + (s.count == 4
        ? [0, proto] + be16(UInt16(length))
        : be16(UInt16(length >> 16)) + be16(UInt16(length & 0xFFFF)) + [0, 0, 0, proto])
  }

  /// RFC 1071 the slow way: 16-bit words, end-around carry.
  static func naiveChecksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i < bytes.count {
      let hi = UInt32(bytes[i])
      let lo = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
      sum += hi << 8 | lo
      sum = (sum & 0xFFFF) + (sum >> 16)
      i += 2
    }
    return ~UInt16(sum & 0xFFFF)
  }

  /// Whether the IP header checksum (IPv4) and the TCP/UDP checksum verify.
  static func checksumIsValid(_ packet: [UInt8]) -> Bool {
    let v4 = packet[0] >> 4 == 4
    let hl = v4 ? Int(packet[0] & 0xF) * 4 : 40
    if v4 && naiveChecksum(Array(packet[0..<hl])) != 0 { return false }
    let proto = v4 ? packet[9] : packet[6]
    let (s, d) = v4 ? (Array(packet[12..<16]), Array(packet[16..<20])) : (Array(packet[8..<24]), Array(packet[24..<40]))
    let seg = Array(packet[hl...])
    if proto == 17 && v4 && seg[6] == 0 && seg[7] == 0 { return true }
    return naiveChecksum(pseudo(s, d, proto, seg.count) + seg) == 0
  }
}
