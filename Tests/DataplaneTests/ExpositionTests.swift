// SPDX-License-Identifier: Apache-2.0
// The stats JSON, the `list` answer and the Prometheus exposition pinned byte for byte for one known
// state: every counter distinct and non-zero, two workers, two tunnels (one with drops).
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct ExpositionTests {
  /// Loop counters 100, 101, 102, … in print order; the GSO flag raised.
  static func knownLoop() -> LoopCounters {
    var loop = LoopCounters()
    for (i, f) in LoopCounters.fields.enumerated() {
      f.set(f.name == "udp_gso_refused" ? 1 : UInt64(100 + i), in: &loop)
    }
    return loop
  }

  static var control: ControlCounters {
    var c = ControlCounters()
    for (i, f) in ControlCounters.fields.enumerated() { f.set(UInt64(11 + i), in: &c) }
    return c
  }

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
    #expect(s.statsObject(control: Self.control).jsonText == ExpositionGolden.stats)
    #expect(s.statsJSON == "{\"stats\":\(s.statsObject().jsonText)}")
    #expect(s.listJSON == ExpositionGolden.list)
  }
}

@Suite struct CountersTests {
  /// Every stored property is in the table (so it is published, summed and printed).
  @Test func everyFieldIsListed() {
    #expect(Mirror(reflecting: LoopCounters()).children.count == LoopCounters.fields.count)
    #expect(Mirror(reflecting: ControlCounters()).children.count == ControlCounters.fields.count)
    #expect(Set(LoopCounters.fields.map(\.name)).count == LoopCounters.fields.count)
  }

  /// What a worker stores, a reader reads back, field for field.
  @Test func publishedWordsRoundTrip() {
    let loop = ExpositionTests.knownLoop()
    let words = SharedWords(count: LoopCounters.fields.count)
    defer { words.free() }
    loop.store(into: words, at: 0)
    #expect(LoopCounters(words: words, at: 0) == loop)
  }

  /// Counts add up, wrapping; a state is set when either is.
  @Test func sumAddsEveryField() {
    let a = ExpositionTests.knownLoop()
    var b = LoopCounters()
    for (i, f) in LoopCounters.fields.enumerated() { f.set(i == 0 ? UInt64.max : UInt64(i), in: &b) }
    let sum = a + b
    for (i, f) in LoopCounters.fields.enumerated() {
      switch f {
      case .count: #expect(f.value(of: sum) == f.value(of: a) &+ (i == 0 ? UInt64.max : UInt64(i)), "\(f.name)")
      case .flag: #expect(f.value(of: sum) == 1, "\(f.name)")
      }
    }
    #expect(LoopCounters() + LoopCounters() == LoopCounters())
    var c = ExpositionTests.control
    c += c
    #expect(c.requests == 22 && c.eventsSent == 34)
  }
}

/// Answers and event lines built as JSON values print as the string-built ones did (the old
/// renderers are the references here).
@Suite struct AnswerTextTests {
  @Test func answersAndEvents() {
    #expect(
      ControlServer.ok([("subscribed", .bool(true)), ("instance", .string("3f2a"))])
        == "{\"ok\":true,\"subscribed\":true,\"instance\":\"3f2a\"}")
    #expect(ControlServer.ok([]) == "{\"ok\":true}")
    #expect(ControlError("no \"x\"\n").answer == "{\"ok\":false,\"error\":\"no \\\"x\\\"\\n\"}")
    let peer = Endpoint(address: IPAddress("192.0.2.1")!, port: 4500)
    let previous = Endpoint(address: IPAddress("2001:db8::1")!, port: 4501)
    let e = PeerEvent(tunnel: "gw-1", spi: 0x1001, peer: peer, previous: previous)
    #expect(
      e.json
        == "{\"event\":\"peer\",\"tunnel\":\(JSONValue.string("gw-1").jsonText),\"spi\":\"\(LookupTables.hexSPI(0x1001))\""
        + ",\"peer\":\"\(peer)\",\"previous\":\"\(previous)\"}")
    #expect(
      JSONValue.membersText([("a", .integer(1)), ("b", .null)]) == ",\"a\":1,\"b\":null"
        && JSONValue.membersText([]) == "")
  }

  @Test func replaySummary() {
    var r = ReplaySummary()
    r.packets = 9
    r.verdicts.decapsulated = 1
    r.verdicts.encapsulated = 2
    r.verdicts.ike = 3
    r.verdicts.keepalive = 1
    r.verdicts.passed = 1
    for d in DropReason.allCases { r.verdicts.drops[d] = UInt64(d.rawValue) }
    func old(_ s: ReplaySummary) -> String {
      let v = s.verdicts
      let drops = DropReason.allCases.map { "\"\($0.name)\":\(v.drops[$0])" }.joined(separator: ",")
      var t = "{\"packets\":\(s.packets),\"decapsulated\":\(v.decapsulated),\"encapsulated\":\(v.encapsulated)"
      t += ",\"ike\":\(v.ike),\"keepalive\":\(v.keepalive),\"passed\":\(v.passed)"
      t += ",\"dropped\":\(v.drops.total),\"drops\":{\(drops)}"
      if let damage = s.damage { t += ",\"damaged\":\(JSONValue.string(damage).jsonText)" }
      return t + "}"
    }
    #expect(r.json == old(r))
    r.damage = "packet 3: truncated \"x\""
    #expect(r.json == old(r))
  }
}
