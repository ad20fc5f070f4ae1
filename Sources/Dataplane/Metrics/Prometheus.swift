// SPDX-License-Identifier: Apache-2.0
// The counters in the Prometheus text exposition format (version 0.0.4), for `GET /metrics`.
import Forwarding

/// A metric family of the text exposition format: its name and HELP text; its type writes the
/// `# TYPE` line and decides what a sample may be (a counter only counts).
protocol PrometheusFamily {
  /// `counter` or `gauge`.
  static var type: String { get }
  var name: String { get }
  var help: String { get }
  init(name: String, help: String)
}

extension PrometheusFamily {
  init(_ name: String, _ help: String) { self.init(name: name, help: help) }

  /// The `# HELP` and `# TYPE` lines.
  func header(into out: inout String) { out += "# HELP \(name) \(help)\n# TYPE \(name) \(Self.type)\n" }

  /// One sample line (`labels` without braces; empty: none).
  fileprivate func line(_ value: String, labels: String, into out: inout String) {
    out += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n"
  }
}

/// A count that only goes up (its name ends in `_total`).
struct PrometheusCounter: PrometheusFamily {
  static let type = "counter"
  let name: String
  let help: String

  func sample(_ v: UInt64, labels: String = "", into out: inout String) { line("\(v)", labels: labels, into: &out) }

  /// The header and one unlabelled sample.
  func expose(_ v: UInt64, into out: inout String) {
    header(into: &out)
    sample(v, into: &out)
  }
}

/// A value that goes up and down, a maximum, or a state (0 or 1).
struct PrometheusGauge: PrometheusFamily {
  static let type = "gauge"
  let name: String
  let help: String

  func sample(_ v: UInt64, labels: String = "", into out: inout String) { line("\(v)", labels: labels, into: &out) }
  /// Nanoseconds, printed as seconds.
  func sample(nanoseconds ns: UInt64, labels: String = "", into out: inout String) {
    line(PrometheusGauge.seconds(ns), labels: labels, into: &out)
  }

  /// The header and one unlabelled sample.
  func expose(_ v: UInt64, into out: inout String) {
    header(into: &out)
    sample(v, into: &out)
  }
  /// A state: 1 or 0.
  func expose(_ flag: Bool, into out: inout String) { expose(flag ? 1 : 0, into: &out) }
  func expose(nanoseconds ns: UInt64, into out: inout String) {
    header(into: &out)
    sample(nanoseconds: ns, into: &out)
  }

  /// Nanoseconds as seconds, for the text format.
  static func seconds(_ ns: UInt64) -> String {
    let s = ns / 1_000_000_000
    let frac = String(ns % 1_000_000_000)
    return "\(s).\(String(repeating: "0", count: 9 - frac.count))\(frac)"
  }
}

extension StatsSnapshot {
  /// The whole exposition: global verdicts and drops by reason, loop counters, SA and tunnel
  /// gauges, lifetime events, control-plane counters, and per tunnel packets, bytes, endpoint
  /// changes, keepalives and (non-zero) drops by reason. Tunnel names need no escaping: they are
  /// letters, digits, '.', '_' and '-' only.
  public func prometheusText(control: ControlCounters? = nil) -> String {
    var out = ""
    out.reserveCapacity(4096 + tunnels.count * 400)

    let packets = PrometheusCounter("espd_packets_total", "Packets by verdict.")
    packets.header(into: &out)
    let c = counters
    for (v, n) in [
      ("decapsulated", c.decapsulated), ("encapsulated", c.encapsulated), ("ike", c.ike),
      ("keepalive", c.keepalive), ("passed", c.passed), ("dropped", c.drops.total),
    ] {
      packets.sample(n, labels: "verdict=\"\(v)\"", into: &out)
    }
    let drops = PrometheusCounter("espd_drops_total", "Packets dropped, by reason.")
    drops.header(into: &out)
    for r in DropReason.allCases { drops.sample(c.drops[r], labels: "reason=\"\(r.name)\"", into: &out) }
    loop.expose(into: &out)
    PrometheusGauge(
      "espd_loop_stall_seconds_max",
      "The longest time a worker spent between two batches on anything but packets (changes, timers, requests), in its own CPU time."
    ).expose(nanoseconds: stallMax, into: &out)
    PrometheusGauge(
      "espd_loop_gap_seconds_max",
      "The same stretch in wall-clock time: it also counts the time the worker waited for a CPU."
    ).expose(nanoseconds: gapMax, into: &out)
    if !workers.isEmpty {
      PrometheusGauge("espd_workers", "Worker loops.").expose(UInt64(workers.count), into: &out)
      let packets = PrometheusCounter("espd_worker_packets_total", "Packets each worker processed.")
      packets.header(into: &out)
      for (i, w) in workers.enumerated() { packets.sample(w.packets, labels: "worker=\"\(i)\"", into: &out) }
      let handed = PrometheusCounter(
        "espd_worker_handed_over_total", "Packets each worker handed to the owner of their tunnel.")
      handed.header(into: &out)
      for (i, w) in workers.enumerated() { handed.sample(w.handedOver, labels: "worker=\"\(i)\"", into: &out) }
      let stall = PrometheusGauge(
        "espd_worker_stall_seconds_max",
        "The longest time each worker spent between two batches on anything but packets.")
      stall.header(into: &out)
      for (i, w) in workers.enumerated() {
        stall.sample(nanoseconds: w.stallMax, labels: "worker=\"\(i)\"", into: &out)
      }
    }
    let (tunnelTotal, inboundTotal) = totals
    PrometheusGauge("espd_tunnels", "Tunnels configured.").expose(UInt64(tunnelTotal), into: &out)
    let sas = PrometheusGauge("espd_sas", "Security associations, by direction.")
    sas.header(into: &out)
    sas.sample(UInt64(inboundTotal), labels: "direction=\"inbound\"", into: &out)
    sas.sample(UInt64(tunnelTotal), labels: "direction=\"outbound\"", into: &out)
    let expire = PrometheusCounter(
      "espd_sa_expire_events_total", "SA lifetime events raised (soft: rekey soon; hard: stopped).")
    expire.header(into: &out)
    expire.sample(softEvents, labels: "hard=\"false\"", into: &out)
    expire.sample(hardEvents, labels: "hard=\"true\"", into: &out)
    control?.expose(into: &out)

    let tunnelPackets = PrometheusCounter(
      "espd_tunnel_packets_total", "Packets through each tunnel (in: decapsulated, out: encapsulated).")
    tunnelPackets.header(into: &out)
    for t in tunnels {
      tunnelPackets.sample(t.counters.packetsIn, labels: "tunnel=\"\(t.name)\",direction=\"in\"", into: &out)
      tunnelPackets.sample(t.counters.packetsOut, labels: "tunnel=\"\(t.name)\",direction=\"out\"", into: &out)
    }
    let bytes = PrometheusCounter("espd_tunnel_bytes_total", "Inner bytes through each tunnel.")
    bytes.header(into: &out)
    for t in tunnels {
      bytes.sample(t.counters.bytesIn, labels: "tunnel=\"\(t.name)\",direction=\"in\"", into: &out)
      bytes.sample(t.counters.bytesOut, labels: "tunnel=\"\(t.name)\",direction=\"out\"", into: &out)
    }
    let moves = PrometheusCounter(
      "espd_tunnel_endpoint_changes_total", "Times each tunnel's peer endpoint moved (NAT rebinding).")
    moves.header(into: &out)
    for t in tunnels { moves.sample(t.counters.endpointChanges, labels: "tunnel=\"\(t.name)\"", into: &out) }
    let keepalives = PrometheusCounter("espd_tunnel_keepalives_sent_total", "NAT-keepalives sent by each tunnel.")
    keepalives.header(into: &out)
    for t in tunnels { keepalives.sample(t.keepalivesSent, labels: "tunnel=\"\(t.name)\"", into: &out) }
    let tunnelDrops = PrometheusCounter(
      "espd_tunnel_drops_total", "Packets of each tunnel dropped, by reason (reasons seen only).")
    tunnelDrops.header(into: &out)
    for t in tunnels {
      for r in DropReason.allCases where t.counters.drops[r] != 0 {
        tunnelDrops.sample(t.counters.drops[r], labels: "tunnel=\"\(t.name)\",reason=\"\(r.name)\"", into: &out)
      }
    }
    return out
  }
}
