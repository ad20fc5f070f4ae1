// SPDX-License-Identifier: Apache-2.0
// The counters in the Prometheus text exposition format (version 0.0.4), for `GET /metrics`.
import Forwarding

extension StatsSnapshot {
  /// The whole exposition: global verdicts and drops by reason, loop counters, SA and tunnel
  /// gauges, lifetime events, control-plane counters, and per tunnel packets, bytes, endpoint
  /// changes, keepalives and (non-zero) drops by reason. Tunnel names need no escaping: they are
  /// letters, digits, '.', '_' and '-' only.
  public func prometheusText(control: [(String, UInt64)] = []) -> String {
    var out = ""
    out.reserveCapacity(4096 + tunnels.count * 400)
    func family(_ name: String, _ type: String, _ help: String) {
      out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }
    func sample(_ name: String, _ labels: String, _ value: UInt64) {
      out += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n"
    }

    family("espd_packets_total", "counter", "Packets by verdict.")
    let c = counters
    for (v, n) in [
      ("decapsulated", c.decapsulated), ("encapsulated", c.encapsulated), ("ike", c.ike),
      ("keepalive", c.keepalive), ("passed", c.passed), ("dropped", c.drops.total),
    ] {
      sample("espd_packets_total", "verdict=\"\(v)\"", n)
    }
    family("espd_drops_total", "counter", "Packets dropped, by reason.")
    for r in DropReason.allCases { sample("espd_drops_total", "reason=\"\(r.name)\"", c.drops[r]) }
    for (name, value) in loop {
      let gauge = StatsSnapshot.loopGauges.contains(name)
      let metric = gauge ? "espd_\(name)" : "espd_\(name)_total"
      family(metric, gauge ? "gauge" : "counter", StatsSnapshot.loopHelp[name] ?? "Loop counter \(name).")
      sample(metric, "", value)
    }
    family(
      "espd_loop_stall_seconds_max", "gauge",
      "The longest time a worker spent between two batches on anything but packets (changes, timers, requests), in its own CPU time."
    )
    out += "espd_loop_stall_seconds_max \(StatsSnapshot.seconds(stallMax))\n"
    family(
      "espd_loop_gap_seconds_max", "gauge",
      "The same stretch in wall-clock time: it also counts the time the worker waited for a CPU.")
    out += "espd_loop_gap_seconds_max \(StatsSnapshot.seconds(gapMax))\n"
    if !workers.isEmpty {
      family("espd_workers", "gauge", "Worker loops.")
      sample("espd_workers", "", UInt64(workers.count))
      family("espd_worker_packets_total", "counter", "Packets each worker processed.")
      for (i, w) in workers.enumerated() { sample("espd_worker_packets_total", "worker=\"\(i)\"", w.packets) }
      family("espd_worker_handed_over_total", "counter", "Packets each worker handed to the owner of their tunnel.")
      for (i, w) in workers.enumerated() { sample("espd_worker_handed_over_total", "worker=\"\(i)\"", w.handedOver) }
      family(
        "espd_worker_stall_seconds_max", "gauge",
        "The longest time each worker spent between two batches on anything but packets.")
      for (i, w) in workers.enumerated() {
        out += "espd_worker_stall_seconds_max{worker=\"\(i)\"} \(StatsSnapshot.seconds(w.stallMax))\n"
      }
    }
    let (tunnelTotal, inboundTotal) = totals
    family("espd_tunnels", "gauge", "Tunnels configured.")
    sample("espd_tunnels", "", UInt64(tunnelTotal))
    family("espd_sas", "gauge", "Security associations, by direction.")
    sample("espd_sas", "direction=\"inbound\"", UInt64(inboundTotal))
    sample("espd_sas", "direction=\"outbound\"", UInt64(tunnelTotal))
    family("espd_sa_expire_events_total", "counter", "SA lifetime events raised (soft: rekey soon; hard: stopped).")
    sample("espd_sa_expire_events_total", "hard=\"false\"", softEvents)
    sample("espd_sa_expire_events_total", "hard=\"true\"", hardEvents)
    for (name, value) in control {
      let metric = "espd_\(name)_total"
      family(metric, "counter", "Control socket: \(name.replacingUnderscores).")
      sample(metric, "", value)
    }

    family("espd_tunnel_packets_total", "counter", "Packets through each tunnel (in: decapsulated, out: encapsulated).")
    for t in tunnels {
      sample("espd_tunnel_packets_total", "tunnel=\"\(t.name)\",direction=\"in\"", t.counters.packetsIn)
      sample("espd_tunnel_packets_total", "tunnel=\"\(t.name)\",direction=\"out\"", t.counters.packetsOut)
    }
    family("espd_tunnel_bytes_total", "counter", "Inner bytes through each tunnel.")
    for t in tunnels {
      sample("espd_tunnel_bytes_total", "tunnel=\"\(t.name)\",direction=\"in\"", t.counters.bytesIn)
      sample("espd_tunnel_bytes_total", "tunnel=\"\(t.name)\",direction=\"out\"", t.counters.bytesOut)
    }
    family("espd_tunnel_endpoint_changes_total", "counter", "Times each tunnel's peer endpoint moved (NAT rebinding).")
    for t in tunnels {
      sample("espd_tunnel_endpoint_changes_total", "tunnel=\"\(t.name)\"", t.counters.endpointChanges)
    }
    family("espd_tunnel_keepalives_sent_total", "counter", "NAT-keepalives sent by each tunnel.")
    for t in tunnels { sample("espd_tunnel_keepalives_sent_total", "tunnel=\"\(t.name)\"", t.keepalivesSent) }
    family("espd_tunnel_drops_total", "counter", "Packets of each tunnel dropped, by reason (reasons seen only).")
    for t in tunnels {
      for r in DropReason.allCases where t.counters.drops[r] != 0 {
        sample("espd_tunnel_drops_total", "tunnel=\"\(t.name)\",reason=\"\(r.name)\"", t.counters.drops[r])
      }
    }
    return out
  }

  /// Loop values that are states, not counts: exported as gauges (no `_total`).
  static let loopGauges: Set<String> = ["udp_gso_refused"]

  /// Nanoseconds as seconds, for the text format.
  static func seconds(_ ns: UInt64) -> String {
    let s = ns / 1_000_000_000
    let frac = String(ns % 1_000_000_000)
    return "\(s).\(String(repeating: "0", count: 9 - frac.count))\(frac)"
  }

  static let loopHelp: [String: String] = [
    "tun_write_dropped": "Decapsulated packets the TUN did not take (its queue was full).",
    "udp_send_dropped": "ESP datagrams the kernel did not take (socket buffer full).",
    "keepalives_sent": "NAT-keepalives sent (RFC 3948 section 4).",
    "ike_punted": "IKE datagrams handed to the IKE daemon.",
    "ike_punt_dropped": "IKE datagrams dropped because the queue to the IKE daemon was full (limits.ike_queue_bytes).",
    "ike_rate_limited": "IKE datagrams dropped over limits.ike_per_second (all sources).",
    "ike_source_limited":
      "IKE datagrams dropped over limits.ike_per_source_per_second (their source address's budget).",
    "ike_replies": "IKE datagrams sent for the IKE daemon.",
    "batches": "Batches handled by the packet loop.",
    "batched_packets": "Packets in those batches (mean batch size = batched_packets / batches).",
    "tun_gso_packets": "GSO packets (TCP/UDP up to 64 KB) read from the TUN.",
    "tun_gso_segments": "Segments cut from them, each sealed into its own ESP packet.",
    "udp_gso_sends": "sendmsg calls that carried several ESP datagrams (UDP GSO).",
    "offload_dropped": "Segments dropped for want of a free buffer.",
    "tun_gro_packets": "TUN writes that carried several decrypted TCP segments as one GSO packet.",
    "tun_gro_segments": "The segments those writes carried.",
    "udp_gro_receives": "Receives that carried several coalesced ESP datagrams (UDP GRO).",
    "udp_gro_datagrams": "The datagrams those receives carried.",
    "udp_gso_refused":
      "1 once the kernel refused a UDP GSO send (its datagrams went again one by one; GSO is then off for that size and larger).",
    "handoff_packets": "Packets a worker handed to the worker that owns their tunnel (--workers N).",
    "handoff_dropped": "Packets lost on the way to their owner: its ring was full.",
    "ike_listen_received": "Datagrams received on the ike.listen sockets (port 500: all IKE, no marker).",
    "ike_reply_dropped":
      "IKE daemon replies not sent: no espd socket for their source address and port, or the kernel refused them.",
    "ike_punt_foreign": "Datagrams on the punt channel from anyone but the IKE daemon's address: dropped.",
  ]
}

extension String {
  fileprivate var replacingUnderscores: String { String(map { $0 == "_" ? " " : $0 }) }
}
