// SPDX-License-Identifier: Apache-2.0
// The stats JSON, the `list` answer and the Prometheus exposition pinned byte for byte for one known
// state: every counter distinct and non-zero, two workers, two tunnels (one with drops).
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct ExpositionTests {
  /// Loop counters 1, 2, 3, … in print order; the GSO flag raised.
  static func knownLoop() -> [(String, UInt64)] {
    LoopCore.loopCounterNames.enumerated().map { ($1, $1 == "udp_gso_refused" ? 1 : UInt64(100 + $0)) }
  }

  static let control: [(String, UInt64)] = [
    ("control_requests", 11), ("control_errors", 12), ("control_refused_not_owner", 13),
    ("control_refused_busy", 14), ("control_refused_limit", 15), ("metrics_scrapes", 16), ("events_sent", 17),
  ]

  static func knownState() throws -> StatsSnapshot {
    let config = Fixture.gatewayConfig([
      Fixture.pair(1, mode: .tunnel).gateway, Fixture.pair(2, mode: .transport).gateway,
    ])
    var s = Pipeline(table: try LookupTables(config: config)).snapshot(loop: knownLoop())
    s.counters.decapsulated = 1
    s.counters.encapsulated = 2
    s.counters.ike = 3
    s.counters.keepalive = 4
    s.counters.passed = 5
    for r in DropReason.allCases { s.counters.drops[r] = UInt64(20 + r.rawValue) }
    s.softEvents = 6
    s.hardEvents = 7
    s.stallMax = 1_500_000
    s.gapMax = 2_000_000_123
    s.workers = [
      WorkerLoad(packets: 40, handedOver: 41, stallMax: 42, gapMax: 43),
      WorkerLoad(packets: 50, handedOver: 51, stallMax: 52, gapMax: 53),
    ]
    s.tunnels[0].counters.packetsIn = 60
    s.tunnels[0].counters.bytesIn = 61
    s.tunnels[0].counters.packetsOut = 62
    s.tunnels[0].counters.bytesOut = 63
    s.tunnels[0].counters.endpointChanges = 64
    s.tunnels[0].counters.drops[.replayed] = 65
    s.tunnels[0].keepalivesSent = 66
    s.tunnels[0].peer = Endpoint(address: IPAddress("192.0.2.7")!, port: 4500)
    s.tunnels[1].alias = IPAddress("100.64.0.9")
    s.tunnels[1].outbound.state = "soft_expired"
    return s
  }

  @Test func exposition() throws {
    #expect(try Self.knownState().prometheusText(control: Self.control) == ExpositionGolden.prometheus)
  }

  @Test func statsAndList() throws {
    let s = try Self.knownState()
    #expect(s.statsObject(extra: Self.control) == ExpositionGolden.stats)
    #expect(s.statsJSON == "{\"stats\":\(s.statsObject())}")
    #expect(s.listJSON == ExpositionGolden.list)
  }
}
