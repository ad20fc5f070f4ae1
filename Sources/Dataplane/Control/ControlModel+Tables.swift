// SPDX-License-Identifier: Apache-2.0
// The workers' lookup tables as the control thread builds them: whole at start-up, and again, larger,
// when the tunnels outgrow them (the workers swap them in between batches; the old ones are freed here).
import ESP
import Forwarding

extension ControlModel {
  /// Each worker's first tables (`reserve`: slots to make room for without moving, e.g. limits.tunnels).
  func initialTables(reserve: Int = 0) -> [LookupTables] {
    let entries = records.map(\.entry)
    let tables = (0..<workers).map { w in
      LookupTables(entries: entries, config: base, workers: workers, worker: w, reserve: reserve)
    }
    let t = tables[0]
    capacity = (
      t.spiIndex.comfortableCount, t.routes.table4.comfortableCount, t.routes.table6.comfortableCount,
      t.aliases.comfortableCount
    )
    return tables
  }

  /// When an index holds more than its comfortable share, builds every worker larger tables with
  /// the same contents (twice the entries' room) and queues them. O(tunnels), on the control thread,
  /// once per doubling: amortised constant per change.
  func growIfNeeded() {
    let aliases = aliasUsers.count
    guard
      inboundSPIs.count > capacity.spi || routeCount4 > capacity.r4 || routeCount6 > capacity.r6
        || aliases > capacity.alias
    else { return }
    var built: [IndexTables] = []
    for _ in 0..<workers { built.append(buildTables()) }
    let t = built[0]
    capacity = (
      t.spiIndex.comfortableCount, t.routes.table4.comfortableCount, t.routes.table6.comfortableCount,
      t.aliases.comfortableCount
    )
    effects.push([], built.map { [.tables($0)] })
    tableGrowths += 1
  }

  /// Lookup tables for the tunnels in force, with room for twice as many entries.
  private func buildTables() -> IndexTables {
    var spiIndex = OpenAddressingTable<SPIKey>(expected: 2 * max(16, inboundSPIs.count))
    for (spi, slot) in inboundSPIs { spiIndex.insert(SPIKey(spi), slot) }
    var routes = RouteTable(expected4: 2 * max(16, routeCount4), expected6: 2 * max(16, routeCount6))
    var aliases = OpenAddressingTable<MaskedAddress>(expected: 2 * max(16, aliasUsers.count))
    for r in records where r.config.mode == .tunnel { for p in r.config.remoteTS { routes.insert(p, r.tunnel.index) } }
    for (a, users) in aliasUsers {
      aliases.insert(RouteTable.mask(a, a.isV6 ? 128 : 32), users.count > 1 ? LookupTables.sharedAlias : users[0])
    }
    return IndexTables(spiIndex: spiIndex, routes: routes, aliases: aliases)
  }
}
