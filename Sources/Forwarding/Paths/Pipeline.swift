// SPDX-License-Identifier: Apache-2.0
// The packet paths' state: this worker's lookup tables, learned flows, and verdict counters.
import ESP

/// The inbound and outbound packet paths of one loop (DESIGN.md "The two packet paths"), without
/// I/O: the live loop and `espd replay` both drive it. Not thread-safe; owned by one loop.
public final class Pipeline {
  /// This worker's lookup tables, changed in place between batches (``apply(_:discard:)``).
  @exclusivity(unchecked) public private(set) var table: LookupTables
  /// Learned inner flows for tunnels that share an alias.
  @exclusivity(unchecked) public internal(set) var flows: FlowTable
  /// Verdict counts of this loop.
  @exclusivity(unchecked) public package(set) var counters = VerdictCounters()
  /// Lifetime events raised and not yet taken by the loop (``takeEvents()``).
  @exclusivity(unchecked) public internal(set) var events: [SAEvent] = []
  /// Peer moves seen on authenticated packets and not yet taken by the loop (``takePeerEvents()``).
  @exclusivity(unchecked) public internal(set) var peerEvents: [PeerEvent] = []
  /// The loop's timestamp (monotonic ns) of the batch being processed, set by the loop once per
  /// batch: what an SA records as its last use (never a clock read per packet; 0: not set).
  @exclusivity(unchecked) public var batchTime: UInt64 = 0
  /// Lifetime events raised in all (soft, hard).
  @exclusivity(unchecked) public internal(set) var softEvents: UInt64 = 0
  @exclusivity(unchecked) public internal(set) var hardEvents: UInt64 = 0
  /// This pipeline's worker, and how many workers share the tunnels (``owns(_:)``).
  public let worker: Int
  @exclusivity(unchecked) public package(set) var workers: Int

  /// - Parameters:
  ///   - table: this worker's own tables (each worker has its own copy).
  ///   - flowCapacity: learned flows kept.
  ///   - worker: this pipeline's worker (0 ..< workers).
  ///   - workers: how many workers split the tunnels between them.
  public init(
    table: LookupTables, flowCapacity: Int = DataplaneConstants.flowTableCapacity, worker: Int = 0, workers: Int = 1
  ) {
    self.table = table
    self.worker = worker
    self.workers = max(1, workers)
    flows = FlowTable(capacity: flowCapacity)
  }

  /// Takes the lifetime events raised since the last call.
  public func takeEvents() -> [SAEvent] {
    let e = events
    events.removeAll(keepingCapacity: true)
    return e
  }

  /// Takes the peer moves seen since the last call.
  public func takePeerEvents() -> [PeerEvent] {
    let e = peerEvents
    peerEvents.removeAll(keepingCapacity: true)
    return e
  }

  /// Collects the events an inbound SA raised.
  func noteEvents(_ sa: InboundSA, tunnel: Tunnel) {
    while let e = sa.takeLifetimeEvent() {
      record(SAEvent(spi: sa.spi, direction: .inbound, tunnel: tunnel.name, event: e))
    }
  }

  /// Collects the events an outbound SA raised.
  func noteEvents(_ sa: OutboundSA, tunnel: Tunnel) {
    while let e = sa.takeLifetimeEvent() {
      record(SAEvent(spi: sa.spi, direction: .outbound, tunnel: tunnel.name, event: e))
    }
  }

  private func record(_ e: SAEvent) {
    if e.event.hard { hardEvents &+= 1 } else { softEvents &+= 1 }
    events.append(e)
  }

  /// Raises the time-based lifetime events that are due on one tunnel this worker owns.
  package func checkLifetimes(_ t: Tunnel, now: UInt64) {
    for sa in t.inbound where sa.limits.isTimed {
      sa.checkLifetime(now: now)
      if sa.hasLifetimeEvent { noteEvents(sa, tunnel: t) }
    }
    if t.outbound.limits.isTimed {
      t.outbound.checkLifetime(now: now)
      if t.outbound.hasLifetimeEvent { noteEvents(t.outbound, tunnel: t) }
    }
  }

  /// Raises every time-based lifetime event that is due (tests and replay; the loop sweeps a slice
  /// at a time).
  public func checkLifetimes(now: UInt64) {
    for t in table.timed { checkLifetimes(t, now: now) }
  }

  /// Counts a verdict globally and, when it names a tunnel, on the tunnel.
  @inline(__always)
  func finish(_ v: Verdict, tunnel: Tunnel?) -> Verdict {
    counters.count(v)
    if case .dropped(let r) = v { tunnel?.countDrop(r) }
    return v
  }
}

/// One datagram's outer addressing: where it came from and which local endpoint it reached (or,
/// for an outbound packet, where it goes and which local endpoint it leaves from).
public struct DatagramAddress: Equatable, Sendable {
  public var remote: Endpoint
  public var local: Endpoint
  public init(remote: Endpoint, local: Endpoint) {
    self.remote = remote
    self.local = local
  }
}

/// A lifetime event of one SA (INTERFACE.md "Control socket": `{"event":"expire",…}`).
public struct SAEvent: Sendable, Equatable {
  public let spi: UInt32
  public let direction: SADirection
  public let tunnel: String
  public let event: LifetimeEvent
  public init(spi: UInt32, direction: SADirection, tunnel: String, event: LifetimeEvent) {
    self.spi = spi
    self.direction = direction
    self.tunnel = tunnel
    self.event = event
  }

  /// `{"event":"expire","spi":"0x…","hard":false,"reason":"packets","direction":"inbound","tunnel":"alice"}`.
  public var json: String {
    JSONValue.object([
      ("event", .string("expire")), ("spi", .string(LookupTables.hexSPI(spi))), ("hard", .bool(event.hard)),
      ("reason", .string(event.reason.name)), ("direction", .string(direction.rawValue)), ("tunnel", .string(tunnel)),
    ]).jsonText
  }
}
