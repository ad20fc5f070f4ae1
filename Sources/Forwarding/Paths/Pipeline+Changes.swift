// SPDX-License-Identifier: Apache-2.0
// A worker applying one change from its queue to its own tables (between batches). Every worker
// keeps its index of SPIs, routes and aliases; only a tunnel's owner touches the tunnel's state.
import ESP

extension Pipeline {
  /// Applies one change. Constant time, except ``TableChange/tables(_:)`` (a pointer swap) and the
  /// removal of a tunnel that had learned flows (one pass over the bounded flow table). Nothing is
  /// freed here: SAs (their OpenSSL contexts, wiped), tunnels and old tables go to `discard`, and
  /// the control thread frees them.
  /// - Parameter discard: takes what this worker lets go of, for the control thread to free.
  package func apply(_ change: TableChange, discard: (Any) -> Void) {
    switch change {
    case .addTunnel(let e, let alias):
      place(e)
      if let alias { apply(alias) }
    case .removeTunnel(let e, let alias):
      unplace(e, forgetFlows: true)
      if let alias { apply(alias) }
      discard(e.tunnel)
    case .replaceTunnel(let old, let new, let aliases):
      discard(old.tunnel)
      unplace(old, forgetFlows: old.tunnel.alias != new.tunnel.alias)
      place(new)
      for a in aliases { apply(a) }
      if owns(new.tunnel) { new.tunnel.takeState(from: old.tunnel) }
    case .addInbound(let t, let sa):
      table.spiIndex.insert(SPIKey(sa.spi), t.index)
      if owns(t) {
        t.inbound.append(sa)
        if sa.limits.isTimed { table.markTimed(t) }
      }
    case .removeInbound(let t, let spi):
      if table.spiIndex.lookup(SPIKey(spi)) == t.index { table.spiIndex.remove(SPIKey(spi)) }
      if owns(t), let j = t.inbound.firstIndex(where: { $0.spi == spi }) { discard(t.inbound.remove(at: j)) }
    case .setOutbound(let t, let sa):
      if owns(t) {
        discard(t.outbound)
        t.outbound = sa
        if sa.limits.isTimed { table.markTimed(t) }
      }
    case .setPeer(let t, let peer, let local):
      if owns(t) {
        t.peer = peer
        if let local {
          t.local = local
          if t.localEndpoint?.address != local { t.localEndpoint = nil }
        }
      }
    case .tables(let tables):
      discard(IndexTables(spiIndex: table.spiIndex, routes: table.routes, aliases: table.aliases))
      table.spiIndex = tables.spiIndex
      table.routes = tables.routes
      table.aliases = tables.aliases
    case .keepalive:
      break  // the loop's (LoopCore.applyChanges)
    }
  }

  private func apply(_ a: AliasChange) {
    if let v = a.value { table.aliases.insert(a.key, v) } else { table.aliases.remove(a.key) }
    for t in a.sharing where owns(t) { t.sharesAlias = true }
    for t in a.alone where owns(t) { t.sharesAlias = false }
  }

  /// Puts a tunnel in its slot, with its SPIs and routes.
  private func place(_ e: TableEntry) {
    let t = e.tunnel
    let i = Int(t.index)
    if table.slots.count <= i { table.slots.append(contentsOf: repeatElement(nil, count: i + 1 - table.slots.count)) }
    if table.slots[i] == nil { table.tunnelCount += 1 }
    table.slots[i] = t
    for spi in e.spis { table.spiIndex.insert(SPIKey(spi), t.index) }
    for p in e.routes { table.routes.insert(p, t.index) }
    if owns(t) { table.adopt(t) }
  }

  /// Takes a tunnel out of its slot, with its SPIs and routes.
  private func unplace(_ e: TableEntry, forgetFlows: Bool) {
    let t = e.tunnel
    let i = Int(t.index)
    for spi in e.spis where table.spiIndex.lookup(SPIKey(spi)) == t.index { table.spiIndex.remove(SPIKey(spi)) }
    for p in e.routes { table.routes.remove(p, t.index) }
    if i < table.slots.count, table.slots[i] === t {
      table.slots[i] = nil
      table.tunnelCount -= 1
    }
    if owns(t) { table.release(t) }
    // Flows name slots: a slot used again must not inherit them (one pass over the bounded table,
    // only where flows were ever learned, only for transport tunnels).
    if forgetFlows && t.alias != nil && flows.learned > 0 { flows.forget(tunnel: t.index) }
  }
}
