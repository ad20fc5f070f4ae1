// SPDX-License-Identifier: Apache-2.0
// The lookup tables: SPI index, longest-prefix match, and the bounded learned-flow table.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct TableTests {
  @Test func spiTableHoldsAMillion() {
    var t = OpenAddressingTable<SPIKey>(expected: 1_000_000)
    for i in 1...1_000_000 { t.insert(SPIKey(UInt32(i) &* 2_654_435_761), Int32(i)) }
    #expect(t.count == 1_000_000)
    for i in stride(from: 1, through: 1_000_000, by: 997) {
      #expect(t.lookup(SPIKey(UInt32(i) &* 2_654_435_761)) == Int32(i))
    }
    #expect(t.lookup(SPIKey(3)) == nil)
    #expect(t.memoryBytes == (1 << 21) * 12)  // 2^21 slots of (SPI?, Int32)
  }

  @Test func longestPrefixWins() {
    func p(_ s: String) -> Prefix {
      let parts = s.split(separator: "/")
      return Prefix(address: IPAddress(parts[0])!, length: Int(parts[1])!)
    }
    let r = RouteTable([
      (p("0.0.0.0/0"), 0), (p("198.51.100.0/24"), 1), (p("198.51.100.128/25"), 2), (p("198.51.100.200/32"), 3),
      (p("2001:db8::/32"), 4), (p("2001:db8:1::/48"), 5), (p("2001:db8:1::1/128"), 6),
    ])
    #expect(r.lookup(IPAddress("192.0.2.1")!) == 0)
    #expect(r.lookup(IPAddress("198.51.100.5")!) == 1)
    #expect(r.lookup(IPAddress("198.51.100.129")!) == 2)
    #expect(r.lookup(IPAddress("198.51.100.200")!) == 3)
    #expect(r.lookup(IPAddress("2001:db8:2::1")!) == 4)
    #expect(r.lookup(IPAddress("2001:db8:1::2")!) == 5)
    #expect(r.lookup(IPAddress("2001:db8:1::1")!) == 6)
    #expect(r.lookup(IPAddress("2001:db9::1")!) == nil)
    #expect(RouteTable.contains(p("198.51.100.0/24"), IPAddress("198.51.100.77")!))
    #expect(!RouteTable.contains(p("198.51.100.0/24"), IPAddress("198.51.101.1")!))
    #expect(!RouteTable.contains(p("0.0.0.0/0"), IPAddress("2001:db8::1")!))
  }

  @Test func flowTableIsBoundedAndEvictsTheOldest() {
    var f = FlowTable(capacity: 64)
    let alias = IPAddress("198.51.100.130")!
    for port in 0..<1000 {
      f.learn(FlowKey(alias: alias, proto: 17, remotePort: UInt16(port), localPort: 1701), tunnel: Int32(port))
    }
    #expect(f.count == 64)
    #expect(f.learned == 1000 && f.evicted == 936)
    // The most recent flows are still there.
    #expect(f.lookup(FlowKey(alias: alias, proto: 17, remotePort: 999, localPort: 1701)) == 999)
    f.learn(FlowKey(alias: alias, proto: 17, remotePort: 999, localPort: 1701), tunnel: 5)
    #expect(f.lookup(FlowKey(alias: alias, proto: 17, remotePort: 999, localPort: 1701)) == 5)
    f.forget(tunnel: 5)
    #expect(f.lookup(FlowKey(alias: alias, proto: 17, remotePort: 999, localPort: 1701)) == nil)
  }
}
