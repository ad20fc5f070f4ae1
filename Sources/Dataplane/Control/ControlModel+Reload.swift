// SPDX-License-Identifier: Apache-2.0
// SIGHUP: the configuration file's tunnels against those in force, and only the difference applied.
// An unchanged tunnel is not touched; a changed one keeps its slot, its run-time state and every SA
// whose configuration is unchanged (sequence numbers and replay windows go on).
import ESP
import Forwarding

extension TunnelConfig {
  /// Whether the tunnel-level settings (not the SAs) are the same.
  func sameShape(as o: TunnelConfig) -> Bool {
    name == o.name && mode == o.mode && peer == o.peer && remoteTS == o.remoteTS && alias == o.alias
      && local == o.local && natKeepalive == o.natKeepalive
  }

  /// Whether everything, SAs included, is the same.
  func same(as o: TunnelConfig) -> Bool { sameShape(as: o) && inbound == o.inbound && outbound == o.outbound }
}

extension ControlModel {
  /// What a reload did, for the log.
  struct ReloadSummary: CustomStringConvertible {
    var added = 0
    var removed = 0
    var changed = 0
    var unchanged = 0
    var description: String {
      "\(added) added, \(removed) removed, \(changed) changed, \(unchanged) unchanged"
    }
  }

  /// Puts the tunnels of `new` (validated as a whole, aliases allocated) in force, changing only
  /// what differs. Nothing changes when an SA cannot be created or a route cannot be installed.
  func reload(_ new: Config, now: UInt64) -> Result<ReloadSummary, ControlError> {
    var summary = ReloadSummary()
    struct Plan {
      var config: TunnelConfig
      var old: Record?
      var tunnel: Tunnel
      var sameOwner: Bool
    }
    var plans: [Plan] = []
    var names = Set<String>()
    var taken: [Int32] = []
    func giveBack() { for s in taken.reversed() { releaseSlot(s) } }
    for (i, t) in new.tunnels.enumerated() {
      names.insert(t.name)
      let old = record(named: t.name)
      if let old, old.config.same(as: t) {
        summary.unchanged += 1
        continue
      }
      do throws(SAError) {
        var inbound: [InboundSA] = []
        for sa in t.inbound {
          if let old, let j = old.config.inbound.firstIndex(of: sa) {
            inbound.append(old.inbound[j])
          } else {
            inbound.append(try LookupTables.makeInbound(sa, now: now))
          }
        }
        let outbound: OutboundSA
        if let old, old.config.outbound == t.outbound {
          outbound = old.outbound
        } else {
          outbound = try LookupTables.makeOutbound(t.outbound, now: now)
        }
        let ownerKey = Tunnel.ownerKey(name: t.name, mode: t.mode, alias: t.alias)
        let sameOwner =
          old.map { Tunnel.owner($0.tunnel.ownerKey, workers: workers) == Tunnel.owner(ownerKey, workers: workers) }
          ?? false
        let slot: Int32
        if let old, sameOwner {
          slot = old.tunnel.index
        } else {
          slot = takeSlotForReload()
          taken.append(slot)
        }
        plans.append(
          Plan(
            config: t, old: old, tunnel: Tunnel(index: slot, config: t, outbound: outbound, inbound: inbound),
            sameOwner: sameOwner))
      } catch {
        giveBack()
        return .failure(ControlError("tunnels[\(i)]: \(error)"))
      }
    }
    // Routes of the new versions first (a prefix kept across a change never disappears): those no
    // tunnel routes yet; the old versions' routes that nothing routes any more go at the end.
    var routed: [Prefix] = []
    var fresh = Set<Prefix>()
    for p in plans {
      let prefixes = unrouted(RouteInstaller.prefixes(of: p.config)).filter { fresh.insert($0).inserted }
      if let problem = effects.addRoutes(prefixes) {
        effects.removeRoutes(routed)
        giveBack()
        return .failure(ControlError("cannot install routes: \(problem)"))
      }
      routed += prefixes
    }
    var oldPrefixes: [Prefix] = []
    // Out: tunnels gone from the file, and changed tunnels that move to another worker.
    for r in records where !names.contains(r.config.name) {
      oldPrefixes += RouteInstaller.prefixes(of: r.config)
      deleteForReload(r)
      summary.removed += 1
    }
    var moved = false
    for p in plans where p.old != nil && !p.sameOwner {
      oldPrefixes += RouteInstaller.prefixes(of: p.old!.config)
      deleteForReload(p.old!)
      moved = true
    }
    if moved { effects.settle() }  // their old owners let go before the new ones start
    // In: new tunnels, changed ones (in place, or anew on their new owner).
    for p in plans {
      let record = Record(config: p.config, tunnel: p.tunnel)
      guard let old = p.old else {
        registerForReload(record)
        push([.addTunnel(record.entry, alias: p.config.alias.map(aliasJoined))])
        summary.added += 1
        continue
      }
      summary.changed += 1
      if !p.sameOwner {
        p.tunnel.takeState(from: old.tunnel)  // the old owner applied the removal: nothing writes it now
        registerForReload(record)
        push([.addTunnel(record.entry, alias: p.config.alias.map(aliasJoined))])
        continue
      }
      let oldEntry = old.entry
      var aliases: [AliasChange] = []
      unregisterForReplace(old)
      if let a = old.config.alias { aliases.append(aliasLeft(a)) }
      registerForReload(record)
      if let a = p.config.alias { aliases.append(aliasJoined(a)) }
      let kept = Set(p.config.inbound.map(\.spi))
      for spi in oldEntry.spis where !kept.contains(spi) { effects.steer(spi, nil) }
      push([.replaceTunnel(old: oldEntry, new: record.entry, aliases: aliases)])
      oldPrefixes += RouteInstaller.prefixes(of: old.config)
    }
    effects.removeRoutes(Array(Set(oldPrefixes.filter { !isRouted($0) })))
    // Settings a reload may change.
    if new.natKeepaliveSeconds != base.natKeepaliveSeconds {
      push([.keepalive(UInt64(max(0, new.natKeepaliveSeconds)) * 1_000_000_000)])
    }
    updateSettings(from: new)
    return .success(summary)
  }
}
