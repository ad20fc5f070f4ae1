// SPDX-License-Identifier: Apache-2.0
// Resource limits (`"limits"` in the configuration): how many tunnels and SAs espd holds, how much
// IKE it queues for the daemon, how many control connections it serves. Each has a default that a
// large concentrator fits in, a one-line error when a configuration or a request goes past it, and
// a counter when traffic or clients do.

/// The configured limits (all optional in the file; the defaults are below).
public struct Limits: Sendable, Equatable {
  /// Tunnels in all (configuration file, reload and `add_tunnel`).
  public var tunnels = 1_000_000
  /// SAs in all, inbound and outbound (each costs its cipher contexts and replay bitmap).
  public var sas = 4_000_000
  /// Inbound SAs of one tunnel (more than one only during a rekey).
  public var inboundSAsPerTunnel = 16
  /// Open control connections at once; more are answered with an error and closed.
  public var controlConnections = 64
  /// Bytes of IKE datagrams waiting for the daemon (the punt socket's send buffer): beyond it a
  /// datagram is dropped and counted (`ike_punt_dropped`) instead of queueing without end.
  public var ikeQueueBytes = 1 << 20
  /// IKE datagrams punted per second (a token bucket with one second of burst); beyond it they are
  /// dropped and counted (`ike_rate_limited`), so an IKE flood cannot bury the daemon or the loop.
  public var ikePerSecond = 20_000
  /// IKE datagrams punted per second from one source address (a bucket each, one second of
  /// burst): one flooding address cannot take the whole `ikePerSecond` and shut the other peers'
  /// IKE out (`ike_source_limited`). Clients behind one NAT share their address's budget.
  public var ikePerSourcePerSecond = 1_000

  public init() {}

  /// The fields of `limits`, in the order the README lists them.
  static let fields = [
    "tunnels", "sas", "inbound_sas_per_tunnel", "control_connections", "ike_queue_bytes", "ike_per_second",
    "ike_per_source_per_second",
  ]
}

extension ConfigParser {
  /// `limits`: an object of positive integers, each within what espd can honour.
  static func parseLimits(_ value: JSONValue, _ path: String, _ problems: inout Problems) -> Limits {
    var limits = Limits()
    guard let r = FieldReader(value, path: path, what: "an object of limits", problems: &problems) else {
      return limits
    }
    r.rejectUnknown(allowed: Limits.fields, problems: &problems)
    func read(_ name: String, _ range: ClosedRange<UInt64>, into field: WritableKeyPath<Limits, Int>) {
      if let v = r[name], let n = integer(v, r.path(name), in: range, &problems) { limits[keyPath: field] = Int(n) }
    }
    read("tunnels", 1...10_000_000, into: \.tunnels)
    read("sas", 2...40_000_000, into: \.sas)
    read("inbound_sas_per_tunnel", 1...1024, into: \.inboundSAsPerTunnel)
    read("control_connections", 1...4096, into: \.controlConnections)
    read("ike_queue_bytes", 4096...(64 << 20), into: \.ikeQueueBytes)
    read("ike_per_second", 1...10_000_000, into: \.ikePerSecond)
    read("ike_per_source_per_second", 1...10_000_000, into: \.ikePerSourcePerSecond)
    return limits
  }

  /// The tunnel and SA counts against `limits`: one problem per limit that is exceeded.
  static func checkLimits(_ tunnels: [TunnelConfig], _ limits: Limits, _ problems: inout Problems) {
    if tunnels.count > limits.tunnels {
      problems.add("tunnels", "\(tunnels.count) tunnels, more than limits.tunnels allows (\(limits.tunnels))")
    }
    var sas = 0
    for (i, t) in tunnels.enumerated() {
      sas += t.inbound.count + 1
      if t.inbound.count > limits.inboundSAsPerTunnel {
        problems.add(
          ConfigPath.member(ConfigPath.element("tunnels", i), "inbound"),
          "\(t.inbound.count) SAs, more than limits.inbound_sas_per_tunnel allows (\(limits.inboundSAsPerTunnel))")
      }
    }
    if sas > limits.sas {
      problems.add("tunnels", "\(sas) SAs in all, more than limits.sas allows (\(limits.sas))")
    }
  }
}
