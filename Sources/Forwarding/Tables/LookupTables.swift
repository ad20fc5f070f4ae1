// SPDX-License-Identifier: Apache-2.0
// One worker's lookup tables: tunnels by slot, the SPI index, the route and alias tables. Each worker
// has its own copy and changes it in place, between batches, from its change queue (ChangeQueue.swift):
// a change costs what it touches, whatever the number of tunnels.
import ESP

/// Why a configuration could not be turned into SAs (key material OpenSSL refused, and the like).
public struct LookupTablesError: Error, CustomStringConvertible {
  public let problems: [String]
  package init(problems: [String]) { self.problems = problems }
  public var description: String { problems.joined(separator: "\n") }
}

/// What one tunnel puts in the lookup tables: its SPIs, its routes and its alias.
package struct TableEntry {
  package var tunnel: Tunnel
  package var spis: [UInt32]
  /// Tunnel mode: its `remote_ts`; transport mode: none (it is reached by its alias).
  package var routes: [Prefix]

  package init(tunnel: Tunnel, spis: [UInt32], routes: [Prefix]) {
    self.tunnel = tunnel
    self.spis = spis
    self.routes = routes
  }
}

/// Everything the packet paths look up. Owned by one worker (not thread-safe): the control thread
/// builds the first one and hands each worker its own copy; after that the worker changes it in
/// place with ``Pipeline/apply(_:)``. The tunnels and SA objects inside are shared by the workers;
/// each is mutated only by its owner (Ownership.swift).
public final class LookupTables {
  /// Tunnels by slot (``Tunnel/index``); nil marks a free slot.
  @exclusivity(unchecked) public internal(set) var slots: [Tunnel?]
  /// Inbound SPI → tunnel slot (the SA itself is found in the tunnel's few inbound SAs).
  @exclusivity(unchecked) package var spiIndex: OpenAddressingTable<SPIKey>
  @exclusivity(unchecked) package var routes: RouteTable
  /// Alias → tunnel slot, or ``sharedAlias`` when several tunnels share it.
  @exclusivity(unchecked) package var aliases: OpenAddressingTable<MaskedAddress>
  package static let sharedAlias: Int32 = -2
  public let listen: [Endpoint]
  /// The TUN's own addresses by family: transport-mode packets are delivered to them.
  public let tunAddress4: IPAddress?
  public let tunAddress6: IPAddress?
  /// Tunnels this worker owns that have an SA with a time limit, and initiator tunnels (they send
  /// NAT-keepalives): swept a slice at a time (``Pipeline/sweep(now:)``).
  @exclusivity(unchecked) package var timed: [Tunnel] = []
  @exclusivity(unchecked) package var initiators: [Tunnel] = []
  /// Tunnels in the table.
  @exclusivity(unchecked) public internal(set) var tunnelCount = 0

  /// Builds the SAs and tables for a validated configuration, tunnel `i` in slot `i` (replay,
  /// benchmarks, tests; `espd run` builds them through ``ControlModel``).
  /// - Parameter now: the monotonic clock in ns, from which SAs' time limits count.
  /// - Throws: ``LookupTablesError`` with one line per SA that could not be created.
  public convenience init(config: Config, now: UInt64 = 0) throws(LookupTablesError) {
    var problems: [String] = []
    var entries: [TableEntry] = []
    var seen = Set<UInt32>()
    for (i, t) in config.tunnels.enumerated() {
      do throws(SAError) {
        let made = try LookupTables.makeTunnel(t, index: Int32(i), now: now)
        for (j, sa) in t.inbound.enumerated() where !seen.insert(sa.spi).inserted {
          problems.append("tunnels[\(i)].inbound[\(j)].spi: duplicate SPI \(LookupTables.hexSPI(sa.spi))")
        }
        entries.append(
          TableEntry(tunnel: made, spis: t.inbound.map(\.spi), routes: t.mode == .tunnel ? t.remoteTS : []))
      } catch {
        problems.append("tunnels[\(i)]: \(error)")
      }
    }
    guard problems.isEmpty else { throw LookupTablesError(problems: problems) }
    self.init(entries: entries, config: config, workers: 1, worker: 0)
  }

  /// The tables for `entries`, as worker `worker` of `workers` sees them.
  package init(entries: [TableEntry], config: Config, workers: Int, worker: Int, reserve: Int = 0) {
    var spis = 0
    var r4 = 0
    var r6 = 0
    var aliasCount: [MaskedAddress: Int] = [:]
    var highest: Int32 = -1
    for e in entries {
      spis += e.spis.count
      for p in e.routes { if p.address.isV6 { r6 += 1 } else { r4 += 1 } }
      if let a = e.tunnel.alias { aliasCount[RouteTable.mask(a, a.isV6 ? 128 : 32), default: 0] += 1 }
      highest = max(highest, e.tunnel.index)
    }
    spiIndex = OpenAddressingTable(expected: spis)
    routes = RouteTable(expected4: r4, expected6: r6)
    aliases = OpenAddressingTable(expected: aliasCount.count)
    slots = []
    slots.reserveCapacity(max(reserve, Int(highest) + 1))
    slots.append(contentsOf: repeatElement(nil, count: Int(highest) + 1))
    listen = config.listen
    tunAddress4 = config.tun.addresses.first { !$0.address.isV6 }?.address
    tunAddress6 = config.tun.addresses.first { $0.address.isV6 }?.address
    for e in entries {
      let t = e.tunnel
      slots[Int(t.index)] = t
      tunnelCount += 1
      for spi in e.spis { spiIndex.insert(SPIKey(spi), t.index) }
      for p in e.routes { routes.insert(p, t.index) }
      if let a = t.alias {
        let key = RouteTable.mask(a, a.isV6 ? 128 : 32)
        if aliasCount[key, default: 0] > 1 {
          if worker == 0 { t.sharesAlias = true }  // (set once, before any worker runs)
          aliases.insert(key, LookupTables.sharedAlias)
        } else {
          aliases.insert(key, t.index)
        }
      }
      if Tunnel.owner(t.ownerKey, workers: workers) == worker { adopt(t) }
    }
  }

  /// Creates a tunnel and its SAs from its configuration.
  package static func makeTunnel(_ t: TunnelConfig, index: Int32, now: UInt64) throws(SAError) -> Tunnel {
    var inbound: [InboundSA] = []
    for sa in t.inbound { inbound.append(try makeInbound(sa, now: now)) }
    return Tunnel(index: index, config: t, outbound: try makeOutbound(t.outbound, now: now), inbound: inbound)
  }

  package static func makeInbound(_ sa: SAConfig, now: UInt64) throws(SAError) -> InboundSA {
    let s = try InboundSA(
      spi: sa.spi, algorithm: sa.algorithm, key: sa.key, authKey: sa.authKey, esn: sa.esn,
      replayWindow: sa.replayWindow, replaySequence: sa.replaySequence)
    if let l = sa.lifetime { s.setLimits(SALimits(l, now: now)) }
    return s
  }

  package static func makeOutbound(_ sa: SAConfig, now: UInt64) throws(SAError) -> OutboundSA {
    let s = try OutboundSA(
      spi: sa.spi, algorithm: sa.algorithm, key: sa.key, authKey: sa.authKey, esn: sa.esn,
      sequenceNumber: sa.sequenceNumber)
    if let l = sa.lifetime { s.setLimits(SALimits(l, now: now)) }
    return s
  }

  // MARK: the owner's sweep lists

  /// Puts a tunnel this worker owns on the sweep lists it belongs to.
  func adopt(_ t: Tunnel) {
    if t.peerConfigured && t.natKeepalive && t.initiatorPosition < 0 {
      t.initiatorPosition = Int32(initiators.count)
      initiators.append(t)
    }
    if t.hasTimedSA { markTimed(t) }
  }

  /// Puts a tunnel on the lifetime sweep (it has, or was given, an SA with a time limit).
  func markTimed(_ t: Tunnel) {
    guard t.timedPosition < 0 else { return }
    t.timedPosition = Int32(timed.count)
    timed.append(t)
  }

  /// Takes a tunnel off the sweep lists (it is removed or replaced).
  func release(_ t: Tunnel) {
    LookupTables.swapRemove(&initiators, t, \.initiatorPosition)
    LookupTables.swapRemove(&timed, t, \.timedPosition)
  }

  private static func swapRemove(
    _ list: inout [Tunnel], _ t: Tunnel, _ position: ReferenceWritableKeyPath<Tunnel, Int32>
  ) {
    let i = Int(t[keyPath: position])
    guard i >= 0, i < list.count, list[i] === t else { return }
    let last = list.removeLast()
    if last !== t {
      list[i] = last
      last[keyPath: position] = Int32(i)
    }
    t[keyPath: position] = -1
  }

  // MARK: lookups

  /// The inbound SA with this SPI and its tunnel (the owner's lookup: reads the tunnel's SAs).
  @inline(__always)
  func inboundSA(spi: UInt32) -> (InboundSA, Tunnel)? {
    guard let t = inboundTunnel(spi: spi) else { return nil }
    for sa in t.inbound where sa.spi == spi { return (sa, t) }
    return nil
  }

  /// The tunnel an inbound SPI belongs to (any worker: reads only the tunnel's immutable fields).
  @inline(__always)
  func inboundTunnel(spi: UInt32) -> Tunnel? {
    guard let i = spiIndex.lookup(SPIKey(spi)) else { return nil }
    return slots[Int(i)]
  }

  /// Whether an inbound SA has this SPI (the lookup alone, for benchmarks and tests).
  public func hasInboundSA(spi: UInt32) -> Bool { spiIndex.lookup(SPIKey(spi)) != nil }

  /// The tunnels, in slot order (tests, replay and start-up; O(slots)).
  public var tunnels: [Tunnel] { slots.compactMap { $0 } }

  /// The tunnel by name (tests; O(tunnels)).
  public func tunnel(named name: String) -> Tunnel? { tunnels.first { $0.name == name } }

  /// Every inbound SA with the slot of its tunnel (tests and benchmarks; O(tunnels)).
  public var inboundSAList: [(sa: InboundSA, tunnel: Int32)] {
    tunnels.flatMap { t in t.inbound.map { (sa: $0, tunnel: t.index) } }
  }

  /// Bytes used by the lookup tables (not counting the SAs themselves).
  public var tableMemoryBytes: Int {
    spiIndex.memoryBytes + routes.memoryBytes + aliases.memoryBytes + slots.capacity * 8
  }

  package static func hexSPI(_ spi: UInt32) -> String {
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
