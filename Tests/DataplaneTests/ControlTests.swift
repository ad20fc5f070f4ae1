// SPDX-License-Identifier: Apache-2.0
// The control protocol without I/O: request parsing, what each change does to the configuration,
// and the refusals that must leave it unchanged.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct ControlTests {
  static let keyHex = String(repeating: "a1", count: 20)
  static func sa(_ spi: String, key: String = keyHex) -> String {
    "{\"spi\":\"\(spi)\",\"alg\":\"aes128gcm16\",\"key\":\"\(key)\"}"
  }

  func parse(_ s: String) -> Result<ControlRequest, ControlError> { ControlRequest.parse(Array(s.utf8)) }

  func error(_ s: String) -> String {
    guard case .failure(let e) = parse(s) else { return "accepted" }
    return e.message
  }

  var config: Config {
    Fixture.gatewayConfig([Fixture.pair(1, mode: .tunnel).gateway, Fixture.pair(2, mode: .tunnel).gateway])
  }

  /// The request applied by a control model holding `c`: the configuration it then holds.
  func apply(_ s: String, to c: Config? = nil) -> Result<Config, ControlError> {
    switch parse(s) {
    case .success(let r):
      guard let model = try? ControlModel(config: c ?? config, workers: 1, now: 0) else {
        return .failure(ControlError("model"))
      }
      return model.apply(r, now: 0).map { _ in model.config }
    case .failure(let e): return .failure(e)
    }
  }

  @Test func everyOpParses() throws {
    let tunnel =
      "{\"name\":\"t9\",\"mode\":\"tunnel\",\"remote_ts\":[\"203.0.113.99/32\"],\"inbound\":[\(Self.sa("0x9001"))],\"outbound\":\(Self.sa("0x9002"))}"
    guard case .success(.addTunnel(let t)) = parse("{\"op\":\"add_tunnel\",\"tunnel\":\(tunnel)}") else {
      Issue.record("add_tunnel")
      return
    }
    #expect(t.name == "t9" && t.inbound.first?.spi == 0x9001)
    guard
      case .success(.rekey("t9", let i?, nil)) = parse(
        "{\"op\":\"rekey\",\"name\":\"t9\",\"inbound\":\(Self.sa("0x9003"))}")
    else {
      Issue.record("rekey")
      return
    }
    #expect(i.spi == 0x9003)
    guard case .success(.deleteSA(0x9003)) = parse("{\"op\":\"delete_sa\",\"spi\":\"0x9003\"}"),
      case .success(.deleteSA(36867)) = parse("{\"op\":\"delete_sa\",\"spi\":36867}"),
      case .success(.deleteTunnel("t9")) = parse("{\"op\":\"delete_tunnel\",\"name\":\"t9\"}"),
      case .success(.list) = parse("{\"op\":\"list\"}"),
      case .success(.stats(tunnels: true)) = parse("{\"op\":\"stats\"}"),
      case .success(.stats(tunnels: false)) = parse("{\"op\":\"stats\",\"tunnels\":false}"),
      case .success(.subscribe) = parse("{\"op\":\"subscribe\"}")
    else {
      Issue.record("delete_sa, delete_tunnel, list, stats or subscribe")
      return
    }
  }

  @Test func badRequestsGetOneLineErrors() {
    #expect(error("{\"op\":\"list\"").hasPrefix("bad JSON"))
    #expect(error("[]").contains("expected a JSON object"))
    #expect(error("{\"name\":\"x\"}").hasPrefix("op: expected one of"))
    #expect(error("{\"op\":\"frobnicate\"}").contains("unknown op"))
    #expect(error("{\"op\":\"list\",\"x\":1}").contains("x: unknown member"))
    #expect(error("{\"op\":\"rekey\",\"name\":\"t\"}").contains("expected an inbound SA, an outbound SA or both"))
    #expect(error("{\"op\":\"delete_sa\",\"spi\":0}").hasPrefix("spi: expected a non-zero"))
    #expect(error("{\"op\":\"delete_tunnel\",\"name\":\"bad name!\"}").hasPrefix("name: expected"))
    for e in [
      error("{\"op\":\"rekey\",\"name\":\"t\",\"inbound\":\(Self.sa("0x1", key: String(repeating: "b2", count: 16)))}"),
      error("{\"op\":\"rekey\",\"name\":\"t\",\"inbound\":\(Self.sa("0x1", key: "zz" + Self.keyHex))}"),
    ] {
      #expect(e.contains("inbound.key"), "\(e)")
      #expect(!e.contains("b2b2") && !e.contains("a1a1"), "an error quotes key material: \(e)")
    }
    // The answer is one JSON line.
    let answer = ControlError("a \"quoted\"\nthing").answer
    #expect(!answer.contains("\n") && answer.hasPrefix("{\"ok\":false,\"error\":"))
  }

  @Test func changesAndRefusals() throws {
    let c = config
    // rekey inbound adds; outbound switches; delete_sa removes
    let added = try apply("{\"op\":\"rekey\",\"name\":\"client1\",\"inbound\":\(Self.sa("0x7001"))}").get()
    #expect(added.tunnels[0].inbound.map(\.spi) == [0x1001, 0x7001])
    let switched = try apply("{\"op\":\"rekey\",\"name\":\"client1\",\"outbound\":\(Self.sa("0x7002"))}", to: added)
      .get()
    #expect(switched.tunnels[0].outbound.spi == 0x7002)
    let deleted = try apply("{\"op\":\"delete_sa\",\"spi\":\"0x1001\"}", to: switched).get()
    #expect(deleted.tunnels[0].inbound.map(\.spi) == [0x7001])

    func refused(_ s: String, _ fragment: String, on base: Config? = nil) {
      switch apply(s, to: base) {
      case .success: Issue.record("accepted: \(s)")
      case .failure(let e): #expect(e.message.contains(fragment), "\(e.message)")
      }
    }
    refused("{\"op\":\"rekey\",\"name\":\"nosuch\",\"inbound\":\(Self.sa("0x7001"))}", "no tunnel named")
    refused("{\"op\":\"delete_tunnel\",\"name\":\"nosuch\"}", "no tunnel named")
    refused(
      "{\"op\":\"rekey\",\"name\":\"client1\",\"inbound\":\(Self.sa("0x1002"))}", "an SPI no other inbound SA has")
    refused("{\"op\":\"rekey\",\"name\":\"client1\",\"outbound\":\(Self.sa("0x2001"))}", "the outbound SA in use")
    refused(
      "{\"op\":\"rekey\",\"name\":\"client1\",\"outbound\":\(Self.sa("0x2002"))}", "an SPI no other outbound SA has")
    refused("{\"op\":\"delete_sa\",\"spi\":\"0x1001\"}", "last inbound SA")
    refused("{\"op\":\"delete_sa\",\"spi\":\"0x2001\"}", "outbound SA of tunnel")
    refused("{\"op\":\"delete_sa\",\"spi\":\"0x4444\"}", "no inbound SA")
    let dup =
      "{\"name\":\"client1\",\"mode\":\"tunnel\",\"remote_ts\":[\"203.0.113.99/32\"],\"inbound\":[\(Self.sa("0x9001"))],\"outbound\":\(Self.sa("0x9002"))}"
    refused("{\"op\":\"add_tunnel\",\"tunnel\":\(dup)}", "exists")
    let samePrefix =
      "{\"name\":\"t3\",\"mode\":\"tunnel\",\"remote_ts\":[\"203.0.113.11/32\"],\"inbound\":[\(Self.sa("0x9001"))],\"outbound\":\(Self.sa("0x9002"))}"
    refused("{\"op\":\"add_tunnel\",\"tunnel\":\(samePrefix)}", "a prefix no other tunnel routes")
    var full = c
    for k in 0..<(Limits().inboundSAsPerTunnel - 1) {
      full.tunnels[0].inbound.append(Fixture.sa(UInt32(0x8000 + k), .aes128gcm16, seed: k))
    }
    refused(
      "{\"op\":\"rekey\",\"name\":\"client1\",\"inbound\":\(Self.sa("0x7001"))}",
      "the most limits.inbound_sas_per_tunnel allows", on: full)
  }

  /// Each configured limit refuses the change that would pass it, with an error that names it and
  /// is marked as a limit (the control server counts those as `control_refused_limit`); one below
  /// the limit the same change is accepted.
  @Test func limitsRefuseWhatWouldPassThem() throws {
    let tunnel =
      "{\"name\":\"t3\",\"mode\":\"tunnel\",\"remote_ts\":[\"203.0.113.99/32\"],\"inbound\":[\(Self.sa("0x9001"))],\"outbound\":\(Self.sa("0x9002"))}"
    let add = "{\"op\":\"add_tunnel\",\"tunnel\":\(tunnel)}"
    let rekey = "{\"op\":\"rekey\",\"name\":\"client1\",\"inbound\":\(Self.sa("0x7001"))}"
    func limited(_ request: String, _ edit: (inout Limits) -> Void) -> ControlError? {
      var c = config
      edit(&c.limits)
      switch apply(request, to: c) {
      case .success: return nil
      case .failure(let e): return e
      }
    }
    let tunnels = config.tunnels.count
    let sas = config.tunnels.reduce(0) { $0 + $1.inbound.count + 1 }
    #expect(limited(add) { $0.tunnels = tunnels + 1 } == nil)
    let e1 = try #require(limited(add) { $0.tunnels = tunnels })
    #expect(e1.isLimit && e1.message.contains("limits.tunnels"), "\(e1)")
    #expect(limited(add) { $0.sas = sas + 2 } == nil)
    let e2 = try #require(limited(add) { $0.sas = sas + 1 })
    #expect(e2.isLimit && e2.message.contains("limits.sas"), "\(e2)")
    #expect(limited(rekey) { $0.sas = sas + 1 } == nil)
    let e3 = try #require(limited(rekey) { $0.sas = sas })
    #expect(e3.isLimit && e3.message.contains("limits.sas"), "\(e3)")
    let e4 = try #require(limited(rekey) { $0.inboundSAsPerTunnel = 1 })
    #expect(e4.isLimit && e4.message.contains("limits.inbound_sas_per_tunnel"), "\(e4)")
    // Other refusals are not limits.
    let other = try #require(limited("{\"op\":\"delete_tunnel\",\"name\":\"nosuch\"}") { _ in })
    #expect(!other.isLimit)
  }

  @Test func lifetimeEventsReachThePipelineAndHardExpiryIsCounted() throws {
    var pair = Fixture.pair(1, mode: .tunnel)
    var l = Lifetime()
    l.packetsSoft = 1
    l.packetsHard = 2
    pair.client.outbound.lifetime = l
    let client = Pipeline(
      table: try LookupTables(config: Fixture.clientConfig(pair.client, tunAddress: IPAddress("203.0.113.11")!)))
    let wire = Wire()
    let inner = TestPackets.udp4("203.0.113.11", "198.51.100.1", sport: 1, dport: 2, payload: [1])
    for _ in 0..<3 { _ = wire.send(inner, on: client) }
    let events = client.takeEvents()
    #expect(
      events.map(\.event) == [
        LifetimeEvent(hard: false, reason: .packets), LifetimeEvent(hard: true, reason: .packets),
      ])
    #expect(
      events.first?.json
        == "{\"event\":\"expire\",\"spi\":\"0x00001001\",\"hard\":false,\"reason\":\"packets\",\"direction\":\"outbound\",\"tunnel\":\"gw\"}"
    )
    #expect(client.counters.drops[.expired] == 1 && client.counters.encapsulated == 2)
    #expect(client.takeEvents().isEmpty)
    let s = client.snapshot()
    #expect(s.tunnels[0].outbound.state == "expired" && s.hardEvents == 1 && s.softEvents == 1)
    #expect(s.listJSON.contains("\"state\":\"expired\"") && !s.listJSON.contains("key"))
  }

  @Test func prometheusTextIsWellFormed() throws {
    let gateway = Pipeline(table: try LookupTables(config: config))
    var loop = LoopCounters()
    loop.batches = 3
    var control = ControlCounters()
    control.requests = 5
    let text = gateway.snapshot(loop: loop).prometheusText(control: control)
    var declared = Set<String>()
    for line in text.split(separator: "\n") {
      if line.hasPrefix("# TYPE ") {
        let parts = line.split(separator: " ")
        #expect(parts.count == 4 && ["counter", "gauge"].contains(String(parts[3])), "\(line)")
        #expect(declared.insert(String(parts[2])).inserted, "declared twice: \(line)")
        continue
      }
      if line.hasPrefix("#") { continue }
      let name = String(line.prefix { $0 != "{" && $0 != " " })
      #expect(declared.contains(name), "sample before its TYPE line: \(line)")
      #expect(Double(line.split(separator: " ").last ?? "") != nil, "\(line)")
    }
    #expect(text.contains("espd_tunnels 2\n") && text.contains("espd_batches_total 3\n"))
    #expect(text.contains("espd_tunnel_packets_total{tunnel=\"client2\",direction=\"in\"} 0\n"))
    #expect(text.contains("espd_control_requests_total 5\n"))
    // A state is a gauge, not a counter; the stall is in seconds.
    var flag = LoopCounters()
    flag.udpGSORefused = true
    var refused = gateway.snapshot(loop: flag)
    refused.stallMax = 1_500_000
    let gauges = refused.prometheusText()
    #expect(gauges.contains("# TYPE espd_udp_gso_refused gauge\nespd_udp_gso_refused 1\n"))
    #expect(!gauges.contains("espd_udp_gso_refused_total"))
    #expect(gauges.contains("espd_loop_stall_seconds_max 0.001500000\n"))
    // metrics_per_tunnel off: the totals stay, the per-tunnel series go.
    var summary = gateway.snapshot()
    summary.tunnels = []
    summary.tunnelCount = 2
    summary.inboundSACount = 2
    let small = summary.prometheusText()
    #expect(small.contains("espd_tunnels 2\n") && !small.contains("tunnel=\""))
  }
}
