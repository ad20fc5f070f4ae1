// SPDX-License-Identifier: Apache-2.0
// `bench tunnels`: load many tunnels, print build time and memory per tunnel, and time SPI lookups
// and the inbound path at that scale against a table of 10 tunnels.
import ArgumentParser
import CAllocCounter
import Dataplane
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

struct TunnelsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tunnels",
    abstract: "Scale: build N tunnels (1 inbound + 1 outbound aes128gcm16 SA each); memory and lookup times.")

  @Option(help: "Tunnels to load.")
  var count: Int = 1_000_000

  @Flag(help: "Print only the JSON lines.")
  var json = false

  func run() throws {
    if !json { BenchEnvironment.printHeader() }
    let small = TunnelsBench.build(10)
    let rssBefore = TunnelsBench.residentBytes()
    let heapBefore = TunnelsBench.heapBytes()
    let t0 = nanoseconds()
    let large = TunnelsBench.build(count)
    let buildSeconds = Double(nanoseconds() - t0) / 1e9
    // Live heap (malloc's in-use bytes: SAs, OpenSSL contexts, tables) and resident memory, which
    // also keeps what building the configuration used and freed.
    let perTunnel = Double(TunnelsBench.heapBytes() - heapBefore) / Double(count)
    let rssPerTunnel = Double(TunnelsBench.residentBytes() - rssBefore) / Double(count)
    printJSONLine([
      ("case", .string("tunnels_load")), ("tunnels", .int(count)), ("build_s", .double(buildSeconds, digits: 2)),
      ("bytes_per_tunnel", .double(perTunnel, digits: 0)), ("rss_per_tunnel", .double(rssPerTunnel, digits: 0)),
      ("table_bytes_per_tunnel", .double(Double(large.tableMemoryBytes) / Double(count), digits: 1)),
    ])
    // Lookups of a few active SPIs (the realistic case: traffic on a handful of tunnels), and of
    // SPIs spread over the whole table (every lookup a cache miss: memory latency, not the hash).
    for (name, active) in [("spi_lookup_active10", 10), ("spi_lookup_spread", count)] {
      let (nsSmall, nsLarge) = TunnelsBench.lookupNanos(
        small: small, large: large, tunnels: count, active: active)
      printJSONLine([
        ("case", .string(name)), ("tunnels", .int(count)), ("ns_at_10", .double(nsSmall, digits: 2)),
        ("ns_at_n", .double(nsLarge, digits: 2)), ("ratio", .double(nsLarge / nsSmall, digits: 3)),
      ])
    }
    withExtendedLifetime(small) {}
    withExtendedLifetime(large) {}
  }
}

enum TunnelsBench {
  static func spi(_ i: Int) -> UInt32 { UInt32(truncatingIfNeeded: i &* 2_654_435_761) | 1 }

  static func build(_ n: Int) -> LookupTables {
    let key = CryptoBench.key(.aes128gcm16)
    var tunnels: [TunnelConfig] = []
    tunnels.reserveCapacity(n)
    for i in 0..<n {
      let a = UInt32(0x0A00_0000 + i)  // inner /32 per tunnel (never sent anywhere: in-memory only)
      tunnels.append(
        TunnelConfig(
          name: "t\(i)", mode: .tunnel, peer: nil, remoteTS: [Prefix(address: .v4(a), length: 32)],
          inbound: [SAConfig(spi: spi(i), algorithm: .aes128gcm16, key: key)],
          outbound: SAConfig(spi: spi(i) ^ 0x8000_0000, algorithm: .aes128gcm16, key: key)))
    }
    return orExit { try LookupTables(config: Config(listen: [PipelineBench.gatewayEndpoint], tunnels: tunnels)) }
  }

  /// Median ns per lookup over rounds of 4096 lookups, in the 10-tunnel table (its 10 SPIs) and in
  /// the large one (`active` SPIs spread over it), the rounds alternating so that machine noise
  /// hits both alike.
  static func lookupNanos(small: LookupTables, large: LookupTables, tunnels: Int, active: Int) -> (Double, Double) {
    var rng = UInt64(0x1234_5678)
    func keys(_ n: Int, _ total: Int) -> [UInt32] {
      (0..<4096).map { _ in
        rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return spi(Int(rng >> 33) % n * (total / n))
      }
    }
    let smallKeys = keys(min(active, 10), 10)
    let largeKeys = keys(active, tunnels)
    func round(_ table: LookupTables, _ keys: [UInt32]) -> Double {
      var found = 0
      let t0 = nanoseconds()
      for k in keys where table.hasInboundSA(spi: k) { found += 1 }
      let ns = Double(nanoseconds() - t0) / Double(keys.count)
      if found != keys.count { benchFailure("lookups missed") }
      return ns
    }
    var a: [Double] = []
    var b: [Double] = []
    for _ in 0..<400 {
      a.append(round(small, smallKeys))
      b.append(round(large, largeKeys))
    }
    return (a.sorted()[a.count / 2], b.sorted()[b.count / 2])
  }

  static func heapBytes() -> Int {
    Int(CAllocCounter_heapBytes())
  }

  static func residentBytes() -> Int {
    guard case .success(let text) = FileIO.readText("/proc/self/statm"),
      let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
    else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }
}
