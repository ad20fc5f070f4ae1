// SPDX-License-Identifier: Apache-2.0
// The tunnels in force as the control thread keeps them, and every change to them in a time that
// does not grow with their number: the rules across tunnels are checked against indexes (names,
// SPIs, prefixes, aliases), only the SAs a request names are built, and each worker gets a few
// table changes in its queue. A refused request changes nothing.
import ESP
import Forwarding

/// What the model does outside itself, so that tests can run it without netlink, eBPF or workers.
struct ControlEffects {
  /// Adds one tunnel's routes (nil: done; else the error).
  var addRoutes: ([Prefix]) -> String? = { _ in nil }
  /// Removes one tunnel's routes (problems are logged by the caller).
  var removeRoutes: ([Prefix]) -> Void = { _ in }
  /// Steers an inbound SPI to its owner worker (nil: forget it).
  var steer: (UInt32, Int?) -> Void = { _, _ in }
  /// Queues changes for every worker (`perWorker` ones for one worker each, by index).
  var push: (_ all: [TableChange], _ perWorker: [[TableChange]]) -> Void = { _, _ in }
  /// Returns once every worker applied what was pushed (bounded; a reload's rare owner change).
  var settle: () -> Void = {}
}

/// The control thread's view of the tunnels (not thread-safe: the control thread's alone).
final class ControlModel {
  /// One tunnel as configured, with the objects the workers use.
  final class Record {
    var config: TunnelConfig
    let tunnel: Tunnel
    /// Parallel to `config.inbound`.
    var inbound: [InboundSA]
    var outbound: OutboundSA
    init(config: TunnelConfig, tunnel: Tunnel) {
      self.config = config
      self.tunnel = tunnel
      inbound = tunnel.inbound
      outbound = tunnel.outbound
    }
    /// What the tunnel puts in the workers' lookup tables.
    var entry: TableEntry {
      TableEntry(tunnel: tunnel, spis: config.inbound.map(\.spi), routes: config.mode == .tunnel ? config.remoteTS : [])
    }
  }

  /// The global settings in force (its `tunnels` are not kept up to date: see ``records``).
  private(set) var base: Config
  /// Records by slot (``Tunnel/index``).
  private(set) var slots: [Record?] = []
  private var freeSlots: [Int32] = []
  private(set) var byName: [String: Int32] = [:]
  private(set) var inboundSPIs: [UInt32: Int32] = [:]
  private(set) var outboundSPIs: [UInt32: Int32] = [:]
  private(set) var prefixes: [Prefix: Int32] = [:]
  /// Alias → the slots of the tunnels using it.
  private(set) var aliasUsers: [IPAddress: [Int32]] = [:]
  var pool: AliasAllocator?
  var poolFree: [IPAddress] = []
  let tunAddresses: Set<IPAddress>
  private(set) var saCount = 0
  /// Tunnel-mode routes per family (the workers' route tables hold these).
  private(set) var routeCount4 = 0
  private(set) var routeCount6 = 0
  let workers: Int
  var effects = ControlEffects()
  /// Entries the workers' tables hold before they need larger ones (kept equal across workers).
  var capacity = (spi: 0, r4: 0, r6: 0, alias: 0)
  /// Times the workers got larger tables.
  var tableGrowths = 0
  /// SPIs `alloc_spi` reserved → when the reservation lapses (monotonic ns); ControlModel+SPIs.swift.
  var reserved: [UInt32: UInt64] = [:]
  /// The reservations in the order they lapse (one lifetime for all), with the next one's index.
  var reservedOrder: [(spi: UInt32, until: UInt64)] = []
  var reservedHead = 0

  /// The tunnels, in slot order.
  var records: [Record] { slots.compactMap { $0 } }
  var count: Int { byName.count }
  func record(named name: String) -> Record? { byName[name].flatMap { slots[Int($0)] } }

  /// The model of a validated configuration (aliases allocated), tunnel `i` in slot `i`.
  /// - Throws: ``LookupTablesError`` when an SA cannot be created.
  init(config: Config, workers: Int, now: UInt64) throws(LookupTablesError) {
    self.workers = max(1, workers)
    var b = config
    b.tunnels = []
    base = b
    tunAddresses = Set(config.tun.addresses.map(\.address))
    pool = config.transportAliasPool.map { AliasAllocator(pool: $0) }
    var problems: [String] = []
    for (i, t) in config.tunnels.enumerated() {
      do throws(SAError) {
        let tunnel = try LookupTables.makeTunnel(t, index: Int32(i), now: now)
        register(Record(config: t, tunnel: tunnel), slot: Int32(i))
      } catch {
        problems.append("tunnels[\(i)]: \(error)")
      }
    }
    guard problems.isEmpty else { throw LookupTablesError(problems: problems) }
  }

  // MARK: the indexes

  /// Enters a record into every index (no checks: the caller validated it).
  private func register(_ r: Record, slot: Int32) {
    if slots.count <= Int(slot) { slots.append(contentsOf: repeatElement(nil, count: Int(slot) + 1 - slots.count)) }
    slots[Int(slot)] = r
    byName[r.config.name] = slot
    for sa in r.config.inbound {
      inboundSPIs[sa.spi] = slot
      reserved[sa.spi] = nil  // installed: the reservation has served
    }
    outboundSPIs[r.config.outbound.spi] = slot
    for p in r.config.remoteTS { prefixes[p] = slot }
    if r.config.mode == .tunnel {
      for p in r.config.remoteTS { if p.address.isV6 { routeCount6 += 1 } else { routeCount4 += 1 } }
    }
    if let a = r.config.alias { aliasUsers[a, default: []].append(slot) }
    saCount += r.config.inbound.count + 1
  }

  /// Takes a record out of every index; its slot becomes free (unless it is replaced in place).
  private func unregister(_ r: Record, freeSlot: Bool = true) {
    let slot = r.tunnel.index
    slots[Int(slot)] = nil
    if freeSlot { freeSlots.append(slot) }
    byName[r.config.name] = nil
    for sa in r.config.inbound where inboundSPIs[sa.spi] == slot { inboundSPIs[sa.spi] = nil }
    if outboundSPIs[r.config.outbound.spi] == slot { outboundSPIs[r.config.outbound.spi] = nil }
    for p in r.config.remoteTS where prefixes[p] == slot { prefixes[p] = nil }
    if r.config.mode == .tunnel {
      for p in r.config.remoteTS { if p.address.isV6 { routeCount6 -= 1 } else { routeCount4 -= 1 } }
    }
    if let a = r.config.alias {
      aliasUsers[a]?.removeAll { $0 == slot }
      if aliasUsers[a]?.isEmpty == true {
        aliasUsers[a] = nil
        // An unused address of the pool goes back to it (whether it came from it or not).
        if let p = base.transportAliasPool, RouteTable.contains(p, a) { poolFree.append(a) }
      }
    }
    saCount -= r.config.inbound.count + 1
  }

  /// Whether a tunnel in force routes this prefix (as `remote_ts` or as its alias).
  func isRouted(_ p: Prefix) -> Bool {
    if prefixes[p] != nil { return true }
    let host = p.length == (p.address.isV6 ? 128 : 32)
    return host && aliasUsers[p.address] != nil
  }

  /// The prefixes of `list` that no tunnel in force routes yet (their routes are to be added).
  func unrouted(_ list: [Prefix]) -> [Prefix] { list.filter { !isRouted($0) } }

  /// A free slot (the lowest freed one is not sought: any will do).
  private func takeSlot() -> Int32 {
    if let s = freeSlots.popLast() { return s }
    return Int32(slots.count)
  }

  /// The alias table's entry for `alias` once `slot` joined it (call after ``register(_:slot:)``).
  func aliasJoined(_ alias: IPAddress) -> AliasChange {
    let users = aliasUsers[alias] ?? []
    let key = RouteTable.mask(alias, alias.isV6 ? 128 : 32)
    switch users.count {
    case 0, 1: return AliasChange(key: key, value: users.first)
    case 2:
      return AliasChange(
        key: key, value: LookupTables.sharedAlias, sharing: users.compactMap { slots[Int($0)]?.tunnel })
    default:
      return AliasChange(
        key: key, value: LookupTables.sharedAlias, sharing: users.suffix(1).compactMap { slots[Int($0)]?.tunnel })
    }
  }

  /// The alias table's entry for `alias` once a tunnel left it (call after ``unregister(_:)``).
  func aliasLeft(_ alias: IPAddress) -> AliasChange {
    let users = aliasUsers[alias] ?? []
    let key = RouteTable.mask(alias, alias.isV6 ? 128 : 32)
    switch users.count {
    case 0: return AliasChange(key: key, value: nil)
    case 1: return AliasChange(key: key, value: users[0], alone: users.compactMap { slots[Int($0)]?.tunnel })
    default: return AliasChange(key: key, value: LookupTables.sharedAlias)
    }
  }

  // MARK: changes

  /// Applies a change request (other requests change nothing).
  /// - Returns: what the answer says besides `"ok":true` (its members, in order; empty for none), or
  ///   the refusal.
  func apply(_ request: ControlRequest, now: UInt64) -> Result<[(key: String, value: JSONValue)], ControlError> {
    switch request {
    case .addTunnel(let t):
      return add(t, now: now).map { record(named: t.name)?.config.alias.map { [("alias", .string("\($0)"))] } ?? [] }
    case .deleteTunnel(let name): return delete(name: name).map { [] }
    case .rekey(let name, let inbound, let outbound):
      let replaced = outbound == nil ? nil : record(named: name)?.outbound
      return rekey(name: name, inbound: inbound, outbound: outbound, now: now).map {
        replaced.map { [("replaced", ControlModel.countersValue($0.spi, $0.packets, $0.bytes))] } ?? []
      }
    case .deleteSA(let spi): return deleteSA(spi: spi).map { [] }
    case .allocSPI(let min, let max): return allocSPI(min: min, max: max, now: now)
    case .releaseSPI(let spi): return releaseSPI(spi, now: now).map { [] }
    case .updateTunnel(let name, let peer, let local):
      return updateTunnel(name: name, peer: peer, local: local).map { [] }
    case .list, .stats, .subscribe, .querySA, .listNames: return .success([])
    }
  }

  /// The configuration in force: the settings and every tunnel, in slot order.
  var config: Config {
    var c = base
    c.tunnels = records.map(\.config)
    return c
  }

  /// `add_tunnel`.
  func add(_ requested: TunnelConfig, now: UInt64) -> Result<Void, ControlError> {
    let (t, pooled): (TunnelConfig, Bool)
    switch check(requested) {
    case .failure(let e): return .failure(e)
    case .success(let v): (t, pooled) = v
    }
    let slot = takeSlot()
    let tunnel: Tunnel
    do throws(SAError) {
      tunnel = try LookupTables.makeTunnel(t, index: slot, now: now)
    } catch {
      if slot != Int32(slots.count) { freeSlots.append(slot) }
      if pooled, let a = t.alias { returnAlias(a) }
      return .failure(ControlError("tunnel: \(error)"))
    }
    if let problem = effects.addRoutes(unrouted(RouteInstaller.prefixes(of: t))) {
      if slot != Int32(slots.count) { freeSlots.append(slot) }
      if pooled, let a = t.alias { returnAlias(a) }
      return .failure(ControlError("cannot install routes: \(problem)"))
    }
    let record = Record(config: t, tunnel: tunnel)
    register(record, slot: slot)
    let alias = t.alias.map(aliasJoined)
    for sa in t.inbound { effects.steer(sa.spi, owner(tunnel)) }
    push([.addTunnel(record.entry, alias: alias)])
    return .success(())
  }

  /// `delete_tunnel`.
  func delete(name: String) -> Result<Void, ControlError> {
    guard let r = record(named: name) else { return .failure(ControlModel.noTunnel(name)) }
    remove(r)
    return .success(())
  }

  /// - Parameter routes: whether to remove the routes nothing routes any more now (a reload does it
  ///   once at its end, after the new versions are in).
  private func remove(_ r: Record, routes: Bool = true) {
    let entry = r.entry
    unregister(r)
    let alias = r.config.alias.map(aliasLeft)
    for spi in entry.spis { effects.steer(spi, nil) }
    if routes { effects.removeRoutes(RouteInstaller.prefixes(of: r.config).filter { !isRouted($0) }) }
    push([.removeTunnel(entry, alias: alias)])
    for j in r.config.inbound.indices { r.config.inbound[j].wipeKeys() }
    r.config.outbound.wipeKeys()
  }

  /// `rekey`: a new inbound SA (added first), a new outbound SA, or both; checked whole before
  /// either is put in force.
  func rekey(name: String, inbound: SAConfig?, outbound: SAConfig?, now: UInt64) -> Result<Void, ControlError> {
    guard let r = record(named: name) else { return .failure(ControlModel.noTunnel(name)) }
    if let sa = inbound {
      let most = base.limits.inboundSAsPerTunnel
      if r.config.inbound.count >= most {
        return .failure(
          .limit(
            "tunnel \(JSONValue.quoted(name)) has \(most) inbound SAs, the most limits.inbound_sas_per_tunnel allows (delete_sa an old one first)"
          ))
      }
      if let e = saLimit(adding: 1) { return .failure(e) }
      if let e = inboundInUse(sa.spi, path: "inbound.spi") { return .failure(e) }
    }
    if let sa = outbound {
      if sa.spi == r.config.outbound.spi {
        return .failure(
          ControlError(
            "outbound.spi: \(ConfigParser.spiText(sa.spi)) is the outbound SA in use; a new SA needs a new SPI"))
      }
      if let s = outboundSPIs[sa.spi] {
        return .failure(
          ControlError(
            "outbound.spi: expected an SPI no other outbound SA has, got \(ConfigParser.spiText(sa.spi)) (also tunnel \(JSONValue.quoted(slots[Int(s)]?.config.name ?? "?")))"
          ))
      }
    }
    var newInbound: InboundSA? = nil
    var newOutbound: OutboundSA? = nil
    do throws(SAError) {
      if let sa = inbound { newInbound = try LookupTables.makeInbound(sa, now: now) }
      if let sa = outbound { newOutbound = try LookupTables.makeOutbound(sa, now: now) }
    } catch {
      return .failure(ControlError("\(inbound != nil && newInbound == nil ? "inbound" : "outbound"): \(error)"))
    }
    var changes: [TableChange] = []
    if let sa = inbound, let made = newInbound {
      r.config.inbound.append(sa)
      r.inbound.append(made)
      inboundSPIs[sa.spi] = r.tunnel.index
      reserved[sa.spi] = nil
      saCount += 1
      effects.steer(sa.spi, owner(r.tunnel))
      changes.append(.addInbound(r.tunnel, made))
    }
    if let sa = outbound, let made = newOutbound {
      outboundSPIs[r.config.outbound.spi] = nil
      r.config.outbound.wipeKeys()
      r.config.outbound = sa
      r.outbound = made
      outboundSPIs[sa.spi] = r.tunnel.index
      changes.append(.setOutbound(r.tunnel, made))
    }
    push(changes)
    return .success(())
  }

  /// `delete_sa`: an inbound SA that is not its tunnel's last.
  func deleteSA(spi: UInt32) -> Result<Void, ControlError> {
    guard let slot = inboundSPIs[spi], let r = slots[Int(slot)],
      let j = r.config.inbound.firstIndex(where: { $0.spi == spi })
    else {
      if let s = outboundSPIs[spi], let r = slots[Int(s)] {
        return .failure(
          ControlError(
            "spi \(ConfigParser.spiText(spi)) is the outbound SA of tunnel \(JSONValue.quoted(r.config.name)); rekey its outbound SA instead"
          ))
      }
      return .failure(ControlError("no inbound SA has spi \(ConfigParser.spiText(spi))"))
    }
    if r.config.inbound.count == 1 {
      return .failure(
        ControlError(
          "spi \(ConfigParser.spiText(spi)) is the last inbound SA of tunnel \(JSONValue.quoted(r.config.name)); delete the tunnel instead"
        ))
    }
    r.config.inbound[j].wipeKeys()
    r.config.inbound.remove(at: j)
    r.inbound.remove(at: j)
    inboundSPIs[spi] = nil
    saCount -= 1
    effects.steer(spi, nil)
    push([.removeInbound(r.tunnel, spi: spi)])
    return .success(())
  }

  // MARK: for reload (ControlModel+Reload.swift)

  func takeSlotForReload() -> Int32 {
    let s = takeSlot()
    if Int(s) >= slots.count { slots.append(contentsOf: repeatElement(nil, count: Int(s) + 1 - slots.count)) }
    return s
  }
  /// Gives back a slot taken for a plan that was abandoned.
  func releaseSlot(_ s: Int32) { if slots[Int(s)] == nil { freeSlots.append(s) } }
  func deleteForReload(_ r: Record) { remove(r, routes: false) }
  func unregisterForReplace(_ r: Record) { unregister(r, freeSlot: false) }
  func registerForReload(_ r: Record) {
    register(r, slot: r.tunnel.index)
    for sa in r.config.inbound { effects.steer(sa.spi, owner(r.tunnel)) }
  }
  /// The settings of a reloaded configuration that apply at run time (the caller decided which).
  func updateSettings(from new: Config) {
    var b = new
    b.tunnels = []
    base = b
  }

  /// The worker that owns a tunnel.
  func owner(_ t: Tunnel) -> Int { Tunnel.owner(t.ownerKey, workers: workers) }

  /// Queues changes for every worker, with larger tables first when the indexes outgrew theirs.
  func push(_ changes: [TableChange]) {
    guard !changes.isEmpty else { return }
    effects.push(changes, [])
    growIfNeeded()
  }
}
