// SPDX-License-Identifier: Apache-2.0
// The snapshot the packet paths read: tunnels, the SPI index, the route and alias tables.
import ESP

/// Why a configuration could not be turned into SAs (key material OpenSSL refused, and the like).
public struct SATableError: Error, CustomStringConvertible {
  public let problems: [String]
  public var description: String { problems.joined(separator: "\n") }
}

/// Everything the packet paths look up, built once from a configuration and then only read: the
/// control side builds a new one and the loop swaps it in between batches (no lock per packet).
/// The SA objects inside are mutable, owned by the loop.
public final class SATable {
  public let tunnels: [Tunnel]
  /// Inbound SAs by index, and the tunnel each belongs to.
  let inboundSAs: [InboundSA]
  let inboundTunnel: [Int32]
  let spiIndex: OpenAddressingTable<SPIKey>
  let routes: RouteTable
  /// Alias → tunnel index, or ``sharedAlias`` when several tunnels share it.
  let aliases: OpenAddressingTable<MaskedAddress>
  static let sharedAlias: Int32 = -2
  public let listen: [Endpoint]
  /// The TUN's own addresses by family: transport-mode packets are delivered to them.
  public let tunAddress4: IPAddress?
  public let tunAddress6: IPAddress?
  /// SAs with a time limit, checked once a second by the loop (inbound SA index, or tunnel index for outbound).
  let timedInbound: [Int32]
  let timedOutbound: [Int32]

  /// Builds the SAs and tables for a validated configuration.
  /// - Parameters:
  ///   - config: the configuration.
  ///   - previous: the snapshot in use and the configuration it was built from (a reload): an SA
  ///     whose configuration is unchanged is reused with its state (sequence number, replay window),
  ///     and a tunnel of the same name keeps its learned peer, local endpoint and counters. The
  ///     previous snapshot's mutable state is not read here (this may run on the control thread
  ///     while the loop uses it): each tunnel only remembers its predecessor, and
  ///     ``Pipeline/install(_:replacing:)`` carries the state over on the loop's thread.
  ///   - now: the monotonic clock in ns, from which new SAs' time limits count.
  /// - Throws: ``SATableError`` with one line per SA that could not be created.
  public init(config: Config, previous: (table: SATable, config: Config)? = nil, now: UInt64 = 0) throws(SATableError) {
    var oldInbound: [UInt32: (SAConfig, InboundSA)] = [:]
    var oldOutbound: [UInt32: (SAConfig, OutboundSA)] = [:]
    var oldTunnels: [String: Tunnel] = [:]
    if let (table, cfg) = previous, table.tunnels.count == cfg.tunnels.count {
      for (t, c) in zip(table.tunnels, cfg.tunnels) {
        oldTunnels[t.name] = t
        oldOutbound[c.outbound.spi] = (c.outbound, t.outbound)
        for (sa, sc) in zip(t.inbound, c.inbound) { oldInbound[sc.spi] = (sc, sa) }
      }
    }
    var problems: [String] = []
    var tunnels: [Tunnel] = []
    var inboundSAs: [InboundSA] = []
    var inboundTunnel: [Int32] = []
    var timedInbound: [Int32] = []
    var timedOutbound: [Int32] = []
    var spiIndex = OpenAddressingTable<SPIKey>(expected: config.tunnels.reduce(0) { $0 + $1.inbound.count })
    var routes: [(Prefix, Int32)] = []
    var aliasCount: [MaskedAddress: Int] = [:]
    tunnels.reserveCapacity(config.tunnels.count)
    for (i, t) in config.tunnels.enumerated() {
      let index = Int32(i)
      let path = "tunnels[\(i)]"
      var inbound: [InboundSA] = []
      for (j, sa) in t.inbound.enumerated() {
        do throws(SAError) {
          let s: InboundSA
          if let (c, reused) = oldInbound[sa.spi], c == sa {
            s = reused
          } else {
            s = try InboundSA(
              spi: sa.spi, algorithm: sa.algorithm, key: sa.key, authKey: sa.authKey, esn: sa.esn,
              replayWindow: sa.replayWindow, replaySequence: sa.replaySequence)
            if let l = sa.lifetime { s.setLimits(SALimits(l, now: now)) }
          }
          // From the configuration, not the SA: a reused SA belongs to a running worker.
          if sa.lifetime?.isTimed == true { timedInbound.append(Int32(inboundSAs.count)) }
          inbound.append(s)
          if spiIndex.insert(SPIKey(sa.spi), Int32(inboundSAs.count)) != nil {
            problems.append("\(path).inbound[\(j)].spi: duplicate SPI \(SATable.hexSPI(sa.spi))")
          }
          inboundSAs.append(s)
          inboundTunnel.append(index)
        } catch {
          problems.append("\(path).inbound[\(j)]: \(error)")
        }
      }
      let o = t.outbound
      let outbound: OutboundSA
      do throws(SAError) {
        if let (c, reused) = oldOutbound[o.spi], c == o {
          outbound = reused
        } else {
          outbound = try OutboundSA(
            spi: o.spi, algorithm: o.algorithm, key: o.key, authKey: o.authKey, esn: o.esn,
            sequenceNumber: o.sequenceNumber)
          if let l = o.lifetime { outbound.setLimits(SALimits(l, now: now)) }
        }
      } catch {
        problems.append("\(path).outbound: \(error)")
        continue
      }
      let tunnel = Tunnel(index: Int32(tunnels.count), config: t, outbound: outbound, inbound: inbound)
      tunnel.predecessor = oldTunnels[t.name]
      if o.lifetime?.isTimed == true { timedOutbound.append(Int32(tunnels.count)) }
      tunnels.append(tunnel)
      if t.mode == .tunnel {
        for p in t.remoteTS { routes.append((p, Int32(tunnels.count - 1))) }
      }
      if let a = t.alias {
        aliasCount[RouteTable.mask(a, a.isV6 ? 128 : 32), default: 0] += 1
      }
    }
    guard problems.isEmpty else { throw SATableError(problems: problems) }
    var aliases = OpenAddressingTable<MaskedAddress>(expected: aliasCount.count)
    for t in tunnels {
      guard let a = t.alias else { continue }
      let key = RouteTable.mask(a, a.isV6 ? 128 : 32)
      if aliasCount[key, default: 0] > 1 {
        t.sharesAlias = true
        aliases.insert(key, SATable.sharedAlias)
      } else {
        aliases.insert(key, t.index)
      }
    }
    self.tunnels = tunnels
    self.inboundSAs = inboundSAs
    self.inboundTunnel = inboundTunnel
    self.spiIndex = spiIndex
    self.routes = RouteTable(routes)
    self.aliases = aliases
    self.listen = config.listen
    self.timedInbound = timedInbound
    self.timedOutbound = timedOutbound
    tunAddress4 = config.tun.addresses.first { !$0.address.isV6 }?.address
    tunAddress6 = config.tun.addresses.first { $0.address.isV6 }?.address
  }

  /// The inbound SA with this SPI and its tunnel, in constant time.
  func inboundSA(spi: UInt32) -> (InboundSA, Tunnel)? {
    guard let i = spiIndex.lookup(SPIKey(spi)) else { return nil }
    return (inboundSAs[Int(i)], tunnels[Int(inboundTunnel[Int(i)])])
  }

  /// Whether an inbound SA has this SPI (the lookup alone, for benchmarks and the control path).
  public func hasInboundSA(spi: UInt32) -> Bool { spiIndex.lookup(SPIKey(spi)) != nil }

  /// The tunnel by name (control path).
  public func tunnel(named name: String) -> Tunnel? { tunnels.first { $0.name == name } }

  /// Every inbound SA with the index of its tunnel (control path and stats).
  public var inboundSAList: [(sa: InboundSA, tunnel: Int32)] { Array(zip(inboundSAs, inboundTunnel)) }

  /// Bytes used by the lookup tables (not counting the SAs themselves).
  public var tableMemoryBytes: Int { spiIndex.memoryBytes + routes.memoryBytes + aliases.memoryBytes }

  static func hexSPI(_ spi: UInt32) -> String {
    let h = String(spi, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - h.count)) + h
  }
}

extension Lifetime {
  /// Whether it has a time limit (the SA is then checked once a second).
  var isTimed: Bool { secondsSoft != nil || secondsHard != nil }
}

extension SALimits {
  /// The limits of a configured lifetime, time limits counted from `now` (monotonic ns).
  public init(_ l: Lifetime, now: UInt64) {
    self.init()
    packetsSoft = l.packetsSoft ?? .max
    packetsHard = l.packetsHard ?? .max
    bytesSoft = l.bytesSoft ?? .max
    bytesHard = l.bytesHard ?? .max
    func deadline(_ s: UInt64?) -> UInt64 {
      guard let s else { return .max }
      let (ns, o1) = s.multipliedReportingOverflow(by: 1_000_000_000)
      let (d, o2) = now.addingReportingOverflow(ns)
      return o1 || o2 ? .max - 1 : d
    }
    softDeadline = deadline(l.secondsSoft)
    hardDeadline = deadline(l.secondsHard)
  }
}
