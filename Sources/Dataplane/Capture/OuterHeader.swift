// SPDX-License-Identifier: Apache-2.0
// Builds the outer IP and UDP headers of an ESP-in-UDP datagram in front of it (replay output; the
// live path gives the payload to a UDP socket and the kernel builds these).
import ESP
import Forwarding

public enum OuterHeader {
  /// Prepends IPv4 or IPv6 and UDP headers for `source` → `destination` to the UDP payload in
  /// `packet`, with the UDP checksum computed (RFC 768; mandatory for IPv6, RFC 8200 §8.1).
  /// - Returns: false if the families differ or the headroom is short.
  public static func prepend(_ packet: inout PacketBuffer, source: Endpoint, destination: Endpoint) -> Bool {
    guard source.address.isV6 == destination.address.isV6 else { return false }
    let udpLength = packet.count + 8
    let v6 = source.address.isV6
    guard packet.prepend(8), udpLength <= 0xFFFF else { return false }
    packet.setUInt16(source.port, at: 0)
    packet.setUInt16(destination.port, at: 2)
    packet.setUInt16(UInt16(udpLength), at: 4)
    packet.setUInt16(0, at: 6)
    var sum = InternetChecksum.addPseudoHeader(
      source: source.address, destination: destination.address, protocol: IPProtocol.udp, length: udpLength, to: 0)
    sum = InternetChecksum.add(packet.data, count: udpLength, to: sum)
    let c = InternetChecksum.finish(sum)
    packet.setUInt16(c == 0 ? 0xFFFF : c, at: 6)
    if v6 {
      guard packet.prepend(IPHeader.ipv6Size) else { return false }
      guard case .v6(let sh, let sl) = source.address, case .v6(let dh, let dl) = destination.address else {
        return false
      }
      let p = packet.data
      p.storeBigEndian(UInt32(0x6000_0000), at: 0)
      p.storeBigEndian(UInt16(udpLength), at: 4)
      p.storeBigEndian(UInt16(IPProtocol.udp) << 8 | 64, at: 6)
      p.storeBigEndian(sh, at: 8)
      p.storeBigEndian(sl, at: 16)
      p.storeBigEndian(dh, at: 24)
      p.storeBigEndian(dl, at: 32)
    } else {
      guard packet.prepend(IPHeader.ipv4MinimumSize) else { return false }
      guard case .v4(let s) = source.address, case .v4(let d) = destination.address else { return false }
      let p = packet.data
      p.storeBigEndian(UInt16(0x4500), at: 0)
      p.storeBigEndian(UInt16(udpLength + 20), at: 2)
      p.storeBigEndian(UInt32(0x0000_4000), at: 4)  // DF
      p.storeBigEndian(UInt16(64) << 8 | UInt16(IPProtocol.udp), at: 8)
      p.storeBigEndian(UInt16(0), at: 10)
      p.storeBigEndian(s, at: 12)
      p.storeBigEndian(d, at: 16)
      p.storeBigEndian(InternetChecksum.finish(InternetChecksum.add(p, count: 20)), at: 10)
    }
    return true
  }
}
