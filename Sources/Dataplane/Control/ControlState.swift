// SPDX-License-Identifier: Apache-2.0
// What a change request does to the configuration: the new configuration, checked as a whole,
// or an error and no change. Pure (no I/O, no SA objects), so every rule is unit-tested.
import ESP

/// The configuration the control plane keeps (the running tunnels and SAs), and its changes.
public enum ControlState {
  /// Applies a change request.
  /// - Parameters:
  ///   - request: `add_tunnel`, `delete_tunnel`, `rekey` or `delete_sa`.
  ///   - config: the configuration in force.
  /// - Returns: the new configuration (validated as a whole, with transport aliases allocated), or
  ///   the reason it was refused. Other requests return `config` unchanged.
  public static func apply(_ request: ControlRequest, to config: Config) -> Result<Config, ControlError> {
    var new = config
    switch request {
    case .addTunnel(let t):
      if config.tunnels.contains(where: { $0.name == t.name }) {
        return .failure(ControlError("tunnel \(JSONValue.quoted(t.name)) exists (delete it first, or rekey it)"))
      }
      let limits = config.limits
      if t.inbound.count > limits.inboundSAsPerTunnel {
        return .failure(
          .limit(
            "tunnel.inbound: \(t.inbound.count) SAs, more than limits.inbound_sas_per_tunnel allows (\(limits.inboundSAsPerTunnel))"
          ))
      }
      if config.tunnels.count >= limits.tunnels {
        return .failure(.limit("espd holds \(config.tunnels.count) tunnels, the most limits.tunnels allows"))
      }
      if let e = saLimit(config, adding: t.inbound.count + 1) { return .failure(e) }
      new.tunnels.append(t)
    case .deleteTunnel(let name):
      guard let i = config.tunnels.firstIndex(where: { $0.name == name }) else {
        return .failure(noTunnel(name))
      }
      new.tunnels.remove(at: i)
    case .rekey(let name, let inbound, let outbound):
      guard let i = config.tunnels.firstIndex(where: { $0.name == name }) else {
        return .failure(noTunnel(name))
      }
      if let sa = inbound {
        let most = config.limits.inboundSAsPerTunnel
        if new.tunnels[i].inbound.count >= most {
          return .failure(
            .limit(
              "tunnel \(JSONValue.quoted(name)) has \(most) inbound SAs, the most limits.inbound_sas_per_tunnel allows (delete_sa an old one first)"
            ))
        }
        if let e = saLimit(config, adding: 1) { return .failure(e) }
        new.tunnels[i].inbound.append(sa)
      }
      if let sa = outbound {
        if sa.spi == config.tunnels[i].outbound.spi {
          return .failure(
            ControlError(
              "outbound.spi: \(ConfigParser.spiText(sa.spi)) is the outbound SA in use; a new SA needs a new SPI"))
        }
        new.tunnels[i].outbound = sa
      }
    case .deleteSA(let spi):
      guard let (i, j) = findInbound(spi, in: config) else {
        if let t = config.tunnels.first(where: { $0.outbound.spi == spi }) {
          return .failure(
            ControlError(
              "spi \(ConfigParser.spiText(spi)) is the outbound SA of tunnel \(JSONValue.quoted(t.name)); rekey its outbound SA instead"
            ))
        }
        return .failure(ControlError("no inbound SA has spi \(ConfigParser.spiText(spi))"))
      }
      if config.tunnels[i].inbound.count == 1 {
        return .failure(
          ControlError(
            "spi \(ConfigParser.spiText(spi)) is the last inbound SA of tunnel \(JSONValue.quoted(config.tunnels[i].name)); delete the tunnel instead"
          ))
      }
      new.tunnels[i].inbound.remove(at: j)
    case .list, .stats, .subscribe:
      return .success(config)
    }
    switch ConfigParser.validate(new) {
    case .success(let c): return .success(c)
    case .failure(let e): return .failure(ControlError(e.problems.joined(separator: "; ")))
    }
  }

  /// The refusal when `adding` more SAs would pass `limits.sas`.
  static func saLimit(_ config: Config, adding: Int) -> ControlError? {
    var sas = 0
    for t in config.tunnels { sas += t.inbound.count + 1 }
    guard sas + adding > config.limits.sas else { return nil }
    return .limit("espd holds \(sas) SAs; \(adding) more would pass limits.sas (\(config.limits.sas))")
  }

  /// The tunnel and index of the inbound SA with this SPI.
  static func findInbound(_ spi: UInt32, in config: Config) -> (Int, Int)? {
    for (i, t) in config.tunnels.enumerated() {
      if let j = t.inbound.firstIndex(where: { $0.spi == spi }) { return (i, j) }
    }
    return nil
  }

  static func noTunnel(_ name: String) -> ControlError {
    ControlError("no tunnel named \(JSONValue.quoted(name))")
  }

  /// The SAs of `old` that `new` no longer has (their key copies are wiped by the caller).
  public static func removedSAs(from old: Config, to new: Config) -> [SAConfig] {
    var kept = Set<UInt64>()
    for t in new.tunnels {
      for sa in t.inbound { kept.insert(UInt64(sa.spi)) }
      kept.insert(1 << 32 | UInt64(t.outbound.spi))
    }
    var removed: [SAConfig] = []
    for t in old.tunnels {
      for sa in t.inbound where !kept.contains(UInt64(sa.spi)) { removed.append(sa) }
      if !kept.contains(1 << 32 | UInt64(t.outbound.spi)) { removed.append(t.outbound) }
    }
    return removed
  }
}

extension SAConfig {
  /// Overwrites this copy's key material with zeros (best effort: Swift arrays are values, so only
  /// the storage this copy owns is wiped).
  public mutating func wipeKeys() {
    KeyMaterial.wipe(&key)
    KeyMaterial.wipe(&authKey)
  }
}
