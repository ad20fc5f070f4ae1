// SPDX-License-Identifier: Apache-2.0
// The rules across tunnels, checked against the control model's indexes (names, SPIs, prefixes,
// aliases, limits) for a tunnel or SA about to be added: no pass over the tunnels.
import ESP
import Forwarding

extension ControlModel {
  /// The rules across tunnels for a tunnel about to be added (its own fields were parsed already):
  /// its name, SPIs and prefixes unused, its alias allowed (or one from the pool), the limits.
  /// - Returns: the tunnel with its alias, and whether the alias came from the pool.
  func check(_ t: TunnelConfig) -> Result<(TunnelConfig, Bool), ControlError> {
    if byName[t.name] != nil {
      return .failure(ControlError("tunnel \(JSONValue.quoted(t.name)) exists (delete it first, or rekey it)"))
    }
    let limits = base.limits
    if t.inbound.count > limits.inboundSAsPerTunnel {
      return .failure(
        .limit(
          "tunnel.inbound: \(t.inbound.count) SAs, more than limits.inbound_sas_per_tunnel allows (\(limits.inboundSAsPerTunnel))"
        ))
    }
    if count >= limits.tunnels {
      return .failure(.limit("espd holds \(count) tunnels, the most limits.tunnels allows"))
    }
    if let e = saLimit(adding: t.inbound.count + 1) { return .failure(e) }
    for (j, sa) in t.inbound.enumerated() {
      if let e = inboundInUse(sa.spi, path: "tunnel.inbound[\(j)].spi") { return .failure(e) }
    }
    if let s = outboundSPIs[t.outbound.spi] {
      return .failure(
        ControlError(
          "tunnel.outbound.spi: expected an SPI no other outbound SA has, got \(ConfigParser.spiText(t.outbound.spi)) (also tunnel \(JSONValue.quoted(slots[Int(s)]?.config.name ?? "?")))"
        ))
    }
    for (j, p) in t.remoteTS.enumerated() {
      if let s = prefixes[p] {
        return .failure(
          ControlError(
            "tunnel.remote_ts[\(j)]: expected a prefix no other tunnel routes (nested prefixes are fine), got \(p) (also tunnel \(JSONValue.quoted(slots[Int(s)]?.config.name ?? "?")))"
          ))
      }
    }
    var out = t
    var pooled = false
    if t.mode == .transport {
      if let a = t.alias {
        if tunAddresses.contains(a) {
          return .failure(ControlError("tunnel.alias: expected an address other than the tun's own, got \(a)"))
        }
        if !base.tun.addresses.contains(where: { $0.address.isV6 == a.isV6 }) {
          return .failure(
            ControlError(
              "tunnel.alias: expected an \(a.isV6 ? "IPv6" : "IPv4") address in tun.addresses (decrypted packets are addressed to it), got none for alias \(a)"
            ))
        }
      } else {
        guard let p = base.transportAliasPool else {
          return .failure(
            ControlError(
              "tunnel.alias: expected an address for a transport tunnel (or a global transport_alias_pool), got nothing"
            ))
        }
        guard let a = allocateAlias() else {
          return .failure(
            ControlError("tunnel.alias: expected a free address in transport_alias_pool \(p), got none left"))
        }
        out.alias = a
        pooled = true
      }
    }
    return .success((out, pooled))
  }

  /// The next free pool address (freed ones first), or nil.
  func allocateAlias() -> IPAddress? {
    while let a = poolFree.popLast() { if aliasUsers[a] == nil && !tunAddresses.contains(a) { return a } }
    return pool?.next { self.aliasUsers[$0] != nil || self.tunAddresses.contains($0) }
  }

  /// Hands back a pool address that a refused request had taken.
  func returnAlias(_ a: IPAddress) { poolFree.append(a) }

  func inboundInUse(_ spi: UInt32, path: String) -> ControlError? {
    guard let s = inboundSPIs[spi] else { return nil }
    return ControlError(
      "\(path): expected an SPI no other inbound SA has, got \(ConfigParser.spiText(spi)) (also tunnel \(JSONValue.quoted(slots[Int(s)]?.config.name ?? "?")))"
    )
  }

  /// The refusal when `adding` more SAs would pass `limits.sas`.
  func saLimit(adding: Int) -> ControlError? {
    guard saCount + adding > base.limits.sas else { return nil }
    return .limit("espd holds \(saCount) SAs; \(adding) more would pass limits.sas (\(base.limits.sas))")
  }

  static func noTunnel(_ name: String) -> ControlError { ControlError("no tunnel named \(JSONValue.quoted(name))") }

}
