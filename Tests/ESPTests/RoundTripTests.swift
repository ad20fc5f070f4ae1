// SPDX-License-Identifier: Apache-2.0
// Seal then open, for every algorithm, both sequence number widths, and every payload size 0...1500.
import Testing

@testable import ESP

@Suite struct RoundTripTests {
  @Test(arguments: ESPAlgorithm.allCases, [false, true])
  func everySize(_ alg: ESPAlgorithm, esn: Bool) throws {
    let (out, inb) = try saPair(alg, esn: esn, start: esn ? 0xFFFF_FF00 : 0)
    var rng = SplitMix(seed: 42)
    let slot = Slot()
    for size in 0...1500 {
      let payload = rng.bytes(size)
      var packet = slot.packet(payload)
      let seq = try out.encapsulate(&packet, nextHeader: 4)
      // Layout: header + IV + payload + padding + trailer + ICV, aligned per the transform.
      let text = packet.count - 8 - alg.ivLength - alg.icvLength
      #expect(text % alg.blockSize == 0)
      #expect(text - size - 2 < alg.blockSize)
      #expect(packet.uint32(at: 0) == 0xC1A0_B001)
      #expect(packet.uint32(at: 4) == UInt32(truncatingIfNeeded: seq))
      if alg != .nullsha256 && size >= 16 {
        #expect(Array(packet.bytes[(8 + alg.ivLength)..<(8 + alg.ivLength + 16)]) != Array(payload[0..<16]))
      }
      let result = try inb.decapsulate(&packet)
      #expect(result.nextHeader == 4)
      #expect(result.sequenceNumber == seq)
      #expect(Array(packet.bytes) == payload)
    }
    #expect(out.packets == 1501)
    #expect(inb.packets == 1501)
    if esn { #expect(out.sequenceNumber > 0xFFFF_FFFF) }  // crossed 2^32 with ESN
  }

  /// IVs never repeat under one key: the AEAD IV is the sequence number, the CBC IV is unpredictable.
  @Test(arguments: ESPAlgorithm.allCases.filter { $0.ivLength > 0 })
  func ivsAreUnique(_ alg: ESPAlgorithm) throws {
    let (out, _) = try saPair(alg)
    let slot = Slot()
    var seen = Set<[UInt8]>()
    for _ in 0..<5000 {
      var packet = slot.packet([1, 2, 3, 4])
      try out.encapsulate(&packet, nextHeader: 17)
      seen.insert(Array(packet.bytes[8..<(8 + alg.ivLength)]))
    }
    #expect(seen.count == 5000)
  }

  /// Tunnel mode: whole IPv4 and IPv6 packets, next header 4 and 41.
  @Test(arguments: ESPAlgorithm.allCases, [4, 6])
  func tunnelMode(_ alg: ESPAlgorithm, version: Int) throws {
    let (out, inb) = try saPair(alg)
    let slot = Slot()
    for size in [0, 1, 7, 100, 1000, 1400] {
      let inner = Packets.udp(version: version, payload: [UInt8](repeating: 0xAB, count: size))
      var packet = slot.packet(inner)
      let nh = version == 4 ? ESPConstants.nextHeaderIPv4 : ESPConstants.nextHeaderIPv6
      try out.encapsulate(&packet, nextHeader: nh)
      let r = try inb.decapsulate(&packet)
      #expect(r.nextHeader == nh)
      #expect(Array(packet.bytes) == inner)
      #expect(IPHeader.parse(packet.bytes)?.version == UInt8(version))
    }
  }

  /// Transport mode: strip the IP header, seal the segment, open, rebuild from other addresses
  /// (the alias and the local address) with the checksum recomputed.
  @Test(arguments: ESPAlgorithm.allCases, [4, 6])
  func transportMode(_ alg: ESPAlgorithm, version: Int) throws {
    let (out, inb) = try saPair(alg)
    let slot = Slot()
    for proto in [IPProtocol.udp, IPProtocol.tcp] {
      for size in [0, 1, 33, 512, 1400] {
        let data = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
        let inner =
          proto == IPProtocol.udp
          ? Packets.udp(version: version, payload: data) : Packets.tcp(version: version, payload: data)
        var packet = slot.packet(inner)
        let header = try #require(TransportMode.strip(&packet))
        #expect(header.proto == proto)
        try out.encapsulate(&packet, nextHeader: header.proto)
        let r = try inb.decapsulate(&packet)
        #expect(r.nextHeader == proto)
        let (alias, local) =
          version == 4
          ? (IPAddress("198.51.100.130")!, IPAddress("198.51.100.1")!)
          : (IPAddress("2001:db8:1::130")!, IPAddress("2001:db8:1::1")!)
        #expect(TransportMode.rebuild(&packet, proto: r.nextHeader, source: alias, destination: local))
        let rebuilt = Array(packet.bytes)
        let h = try #require(IPHeader.parse(packet.bytes))
        #expect(h.source == alias && h.destination == local && h.proto == proto)
        #expect(Packets.checksumIsValid(rebuilt))
        #expect(Array(rebuilt[h.headerLength...]).count == inner.count - (version == 4 ? 20 : 40))
        // The segment is unchanged apart from its checksum field.
        let csum = proto == IPProtocol.udp ? 6 : 16
        var a = Array(rebuilt[h.headerLength...])
        var b = Array(inner[(version == 4 ? 20 : 40)...])
        a[csum] = 0; a[csum + 1] = 0; b[csum] = 0; b[csum + 1] = 0
        #expect(a == b)
      }
    }
  }
}
