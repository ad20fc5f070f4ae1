// SPDX-License-Identifier: Apache-2.0
// RFC 3948 §2 classification of datagrams on a NAT-T port.
import Testing
import UDPEncap

@Suite struct ClassificationTests {
  func classify(_ bytes: [UInt8]) -> Classification { bytes.withUnsafeBytes { UDPEncap.classify($0) } }

  @Test func keepalive() {
    #expect(classify([0xFF]) == .natKeepalive)
    #expect(classify([0xFE]) == .malformed)
    #expect(classify([0xFF, 0xFF]) == .malformed)
  }

  @Test func shortDatagramsAreMalformed() {
    #expect(classify([]) == .malformed)
    for n in 1...3 { #expect(classify([UInt8](repeating: 0, count: n)) == .malformed) }
  }

  @Test func ikeNeedsMarkerAndWholeHeader() {
    #expect(classify([0, 0, 0, 0] + [UInt8](repeating: 0x21, count: 28)) == .ike)
    #expect(classify([0, 0, 0, 0] + [UInt8](repeating: 0x21, count: 27)) == .malformed)
    #expect(classify([0, 0, 0, 0]) == .malformed)
  }

  @Test func espBySPI() {
    let esp: [UInt8] = [0xC1, 0xA0, 0xB0, 0x01] + [UInt8](repeating: 7, count: 24)
    #expect(classify(esp) == .esp(spi: 0xC1A0_B001))
    #expect(classify(Array(esp.dropLast())) == .malformed)
  }
}
