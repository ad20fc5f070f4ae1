// SPDX-License-Identifier: Apache-2.0
// `bench pipeline`: whole inbound (classify, SPI lookup, open, selector, endpoint) and outbound
// (route, seal, address) paths in memory, against raw EVP on the same payload size, same run.
import ArgumentParser
import Dataplane
import ESP
import Forwarding

struct PipelineCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pipeline", abstract: "Full inbound/outbound paths in memory vs raw EVP (tunnel mode).")
  @OptionGroup var options: CryptoOptions

  func run() throws {
    if !options.json { BenchEnvironment.printHeader() }
    for alg in try options.algorithms() {
      for size in try options.sizes() where size >= 28 {
        for (name, body, raw) in [
          ("pipeline_encap", PipelineBench.encap(alg, size), CryptoBench.rawSeal(alg, size)),
          ("pipeline_decap", PipelineBench.decap(alg, size), CryptoBench.rawOpen(alg, size)),
        ] {
          let (m, r) = measurePair(seconds: options.seconds, packetsPerBatch: CryptoBench.batch, body, raw)
          printCase(name, alg: alg, size: size, m, r)
        }
      }
    }
  }
}

/// Prints one case line with the ratio of medians to the raw measurement.
func printCase(_ name: String, alg: ESPAlgorithm, size: Int, _ m: Measurement, _ raw: Measurement) {
  let ratio = m.percentile(0.5) == 0 ? 0 : raw.percentile(0.5) / m.percentile(0.5)
  printJSONLine([
    ("case", .string(name)), ("alg", .string(alg.rawValue)), ("size", .int(size)),
    ("pps", .double(m.pps, digits: 0)), ("gbps", .double(m.pps * Double(size) * 8 / 1e9, digits: 3)),
    ("ns_per_pkt", .double(m.nsPerPacket, digits: 1)), ("p50", .double(m.percentile(0.5), digits: 1)),
    ("p90", .double(m.percentile(0.9), digits: 1)), ("raw_p50", .double(raw.percentile(0.5), digits: 1)),
    ("ratio_to_raw", .double(ratio, digits: 3)), ("allocs_per_pkt", .double(m.allocationsPerPacket, digits: 4)),
  ])
}

enum PipelineBench {
  static let gatewayEndpoint = Endpoint(address: .v4(0xC000_0201), port: 4500)  // 192.0.2.1
  static let clientEndpoint = Endpoint(address: .v4(0xCB00_7132), port: 31001)  // 203.0.113.50

  /// A gateway with one tunnel-mode tunnel to a client at 203.0.113.10/32, and the client's mirror.
  static func configs(_ alg: ESPAlgorithm) -> (gateway: Config, client: Config) {
    let up = SAConfig(spi: 0x1001, algorithm: alg, key: CryptoBench.key(alg), authKey: CryptoBench.authKey(alg))
    let down = SAConfig(spi: 0x2001, algorithm: alg, key: CryptoBench.key(alg), authKey: CryptoBench.authKey(alg))
    let inner = Prefix(address: .v4(0xCB00_710A), length: 32)
    let gw = TunnelConfig(
      name: "client", mode: .tunnel, peer: clientEndpoint, remoteTS: [inner], inbound: [up], outbound: down)
    let cl = TunnelConfig(
      name: "gw", mode: .tunnel, peer: gatewayEndpoint, remoteTS: [Prefix(address: .v4(0xC633_6400), length: 24)],
      inbound: [down], outbound: up)
    return (
      Config(listen: [gatewayEndpoint], tunnels: [gw]),
      Config(listen: [Endpoint(address: .v4(0), port: 4500)], tunnels: [cl])
    )
  }

  /// An IPv4 UDP packet of `size` bytes from 203.0.113.10 to 198.51.100.1.
  static func innerPacket(size: Int) -> [UInt8] {
    var p = [UInt8](repeating: 0x61, count: size)
    p[0] = 0x45
    p[2] = UInt8(size >> 8)
    p[3] = UInt8(size & 0xFF)
    p[8] = 64
    p[9] = 17
    p[12...15] = [203, 0, 113, 10]
    p[16...19] = [198, 51, 100, 1]
    return p
  }

  static func encap(_ alg: ESPAlgorithm, _ size: Int) -> () -> UInt64 {
    let gateway = Pipeline(table: orExit { try LookupTables(config: configs(alg).gateway) })
    let slab = Slab(count: CryptoBench.batch)
    // The reply direction: 198.51.100.1 -> 203.0.113.10, routed by the tunnel's remote_ts.
    var reply = innerPacket(size: size)
    reply[12...19] = [198, 51, 100, 1, 203, 0, 113, 10]
    let packets = UnsafeMutablePointer<PacketBuffer>.allocate(capacity: CryptoBench.batch)
    let addresses = UnsafeMutablePointer<DatagramAddress>.allocate(capacity: CryptoBench.batch)
    let verdicts = UnsafeMutablePointer<Verdict>.allocate(capacity: CryptoBench.batch)
    addresses.initialize(
      repeating: DatagramAddress(remote: gatewayEndpoint, local: gatewayEndpoint), count: CryptoBench.batch)
    verdicts.initialize(repeating: .passed, count: CryptoBench.batch)
    for i in 0..<CryptoBench.batch {
      reply.withUnsafeBytes { (slab.slot(i) + Slab.headroom).copyMemory(from: $0.baseAddress!, byteCount: size) }
    }
    return {
      // The header bytes are re-written per batch (encapsulation turns the slot into ESP).
      for i in 0..<CryptoBench.batch {
        reply.withUnsafeBytes { (slab.slot(i) + Slab.headroom).copyMemory(from: $0.baseAddress!, byteCount: 20) }
        packets[i] = slab.packet(i, count: size)
      }
      let t0 = nanoseconds()
      gateway.outbound(packets, addresses: addresses, verdicts: verdicts, count: CryptoBench.batch)
      let ns = nanoseconds() - t0
      guard case .encapsulated = verdicts[0] else { benchFailure("encap failed: \(verdicts[0])") }
      return ns
    }
  }

  static func decap(_ alg: ESPAlgorithm, _ size: Int) -> () -> UInt64 {
    let (gwConfig, clientConfig) = configs(alg)
    let client = Pipeline(table: orExit { try LookupTables(config: clientConfig) })
    let pristine = Slab(count: CryptoBench.batch)
    let slab = Slab(count: CryptoBench.batch)
    var lengths = [Int](repeating: 0, count: CryptoBench.batch)
    var starts = [Int](repeating: 0, count: CryptoBench.batch)
    let inner = innerPacket(size: size)
    for i in 0..<CryptoBench.batch {
      var p = pristine.packet(i, count: size)
      inner.withUnsafeBytes { p.data.copyMemory(from: $0.baseAddress!, byteCount: size) }
      var a = DatagramAddress(remote: gatewayEndpoint, local: gatewayEndpoint)
      guard case .encapsulated = client.outbound(&p, address: &a) else { benchFailure("seal failed") }
      lengths[i] = p.count
      starts[i] = p.start
    }
    let packets = UnsafeMutablePointer<PacketBuffer>.allocate(capacity: CryptoBench.batch)
    let addresses = UnsafeMutablePointer<DatagramAddress>.allocate(capacity: CryptoBench.batch)
    let verdicts = UnsafeMutablePointer<Verdict>.allocate(capacity: CryptoBench.batch)
    addresses.initialize(
      repeating: DatagramAddress(remote: clientEndpoint, local: gatewayEndpoint), count: CryptoBench.batch)
    verdicts.initialize(repeating: .passed, count: CryptoBench.batch)
    return {
      // A fresh gateway per batch (its replay window has seen these numbers), built untimed.
      let paused = CAllocCounterPause()
      let gateway = Pipeline(table: orExit { try LookupTables(config: gwConfig) }, flowCapacity: 64)
      paused.resume()
      let t0 = nanoseconds()
      for i in 0..<CryptoBench.batch {
        (slab.slot(i) + starts[i]).copyMemory(from: pristine.slot(i) + starts[i], byteCount: lengths[i])
        packets[i] = PacketBuffer(base: slab.slot(i), capacity: Slab.slotSize, start: starts[i], count: lengths[i])
      }
      gateway.inbound(packets, addresses: addresses, verdicts: verdicts, count: CryptoBench.batch)
      let ns = nanoseconds() - t0
      guard case .decapsulated = verdicts[CryptoBench.batch - 1] else { benchFailure("decap failed: \(verdicts[0])") }
      withExtendedLifetime(gateway) {}
      return ns
    }
  }
}
