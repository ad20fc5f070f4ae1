// SPDX-License-Identifier: Apache-2.0
// The packet paths' state: the current SA table snapshot, learned flows, and verdict counters.
import ESP

/// The inbound and outbound packet paths of one loop (DESIGN.md "The two packet paths"), without
/// I/O: the live loop and `espd replay` both drive it. Not thread-safe; owned by one loop.
public final class Pipeline {
  /// The snapshot in use; replaced between batches with ``install(_:)``.
  public private(set) var table: SATable
  /// Learned inner flows for tunnels that share an alias.
  public internal(set) var flows: FlowTable
  /// Verdict counts of this loop.
  public internal(set) var counters = VerdictCounters()

  public init(table: SATable, flowCapacity: Int = DataplaneConstants.flowTableCapacity) {
    self.table = table
    flows = FlowTable(capacity: flowCapacity)
  }

  /// Swaps in a new snapshot (between batches). Learned flows follow their tunnel by name to its
  /// new index; flows of tunnels that are gone are forgotten.
  /// - Parameters:
  ///   - table: the new snapshot.
  ///   - old: the snapshot it replaces (nil: forget every learned flow).
  public func install(_ table: SATable, replacing old: SATable? = nil) {
    var mapping: [Int32: Int32] = [:]
    if let old {
      var byName: [String: Int32] = [:]
      for t in table.tunnels { byName[t.name] = t.index }
      for t in old.tunnels { if let n = byName[t.name] { mapping[t.index] = n } }
    }
    flows.remap(mapping)
    self.table = table
  }

  /// Counts a verdict globally and, when it names a tunnel, on the tunnel.
  @inline(__always)
  func finish(_ v: Verdict, tunnel: Tunnel?) -> Verdict {
    counters.count(v)
    if case .dropped(let r) = v { tunnel?.counters.drops.count(r) }
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
