// SPDX-License-Identifier: Apache-2.0
// The routes and policy rules espd installs through its TUN at start-up and removes at exit.
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// Installs what INTERFACE.md "Routes" promises, the way wg-quick does it:
///
/// - every tunnel-mode `remote_ts` prefix and every transport `alias` (/32, /128) gets a route
///   through the TUN, in the main table, or in ``table`` for a full-tunnel prefix (length 0);
/// - a family with a full-tunnel prefix also gets the two wg-quick rules, consulted in this order:
///
/// ```
/// 32764: lookup main suppress_prefixlength 0   # specific routes still win, the main default does not
/// 32765: not fwmark 0x4553 lookup 17747        # everything else, unless espd sent it itself
/// 32766: lookup main                           # (the kernel's own)
/// ```
///
/// espd's UDP sockets carry ``fwmark`` (see ``markSocket(_:)``), so its own ESP packets skip the
/// second rule and leave through the main table even when a prefix covers the peer's address.
///
/// Not thread-safe; used by the control path at start-up and exit.
public final class RouteInstaller {
  /// espd's routing table for full-tunnel (`/0`) routes: 0x4553 ("ES"), like wg-quick's 51820 a
  /// number no distribution assigns (iproute2 `rt_tables` names only 253 to 255).
  public static let table: UInt32 = 0x4553
  /// The SO_MARK on espd's own sockets, which the policy rule exempts from ``table``.
  public static let fwmark: UInt32 = 0x4553
  /// `lookup main suppress_prefixlength 0`: just below the kernel's main rule (32766), first.
  public static let suppressRulePriority: UInt32 = 32764
  /// `not fwmark M lookup T`: after the suppress rule, before the kernel's main rule.
  public static let fwmarkRulePriority: UInt32 = 32765
  /// RT_TABLE_MAIN (linux/rtnetlink.h).
  public static let mainTable: UInt32 = 254

  /// One route through the TUN: a destination prefix and the table it goes into.
  public struct Route: Hashable, Sendable, CustomStringConvertible {
    /// The destination.
    public var prefix: Prefix
    /// ``RouteInstaller/mainTable`` or ``RouteInstaller/table``.
    public var table: UInt32
    /// Creates a route.
    public init(prefix: Prefix, table: UInt32) {
      self.prefix = prefix
      self.table = table
    }
    /// `198.51.100.0/24 table main`.
    public var description: String { "\(prefix) table \(Netlink.tableName(table))" }
  }

  /// The routes the configuration it was made for calls for, each prefix once, in configuration order
  /// (emptied by ``dropPlan()`` once installed: at a million tunnels it is tens of megabytes).
  public private(set) var routes: [Route]
  /// The policy rules that configuration calls for (none without a full-tunnel prefix).
  public let rules: [PolicyRule]

  private let netlink: Netlink
  private let interfaceIndex: Int32
  private let interfaceName: String
  private var installedRouteSet = Set<Route>()
  private var installedRules: [PolicyRule] = []

  /// Plans the routes and rules for `config`; nothing is changed until ``install()``.
  /// - Parameters:
  ///   - netlink: the socket to use (in the namespace the TUN lives in).
  ///   - interfaceIndex: the TUN's index.
  ///   - config: the validated configuration.
  public init(netlink: Netlink, interfaceIndex: Int32, config: Config) {
    self.netlink = netlink
    self.interfaceIndex = interfaceIndex
    self.interfaceName = netlink.interfaceName(index: interfaceIndex) ?? config.tun.name
    (routes, rules) = RouteInstaller.plan(config)
  }

  /// Forgets the plan (after ``install()``): what is installed is still known and removed at exit.
  public func dropPlan() { routes = [] }

  /// The prefixes one tunnel routes through the TUN: its `remote_ts` in tunnel mode, and its alias.
  public static func prefixes(of tunnel: TunnelConfig) -> [Prefix] {
    var prefixes = tunnel.mode == .tunnel ? tunnel.remoteTS : []
    if let alias = tunnel.alias { prefixes.append(Prefix(address: alias, length: alias.isV6 ? 128 : 32)) }
    return prefixes
  }

  /// Adds routes at run time (the caller, ``ControlModel``, passes only prefixes no other tunnel
  /// routes); the first full-tunnel prefix of a family brings that family's two rules.
  /// - Throws: the first ``NetlinkError``, after taking back what this call added.
  public func add(_ prefixes: [Prefix]) throws(NetlinkError) {
    var done: [Prefix] = []
    do throws(NetlinkError) {
      for p in prefixes {
        let route = Route(prefix: p, table: p.length == 0 ? RouteInstaller.table : RouteInstaller.mainTable)
        try netlink.addRoute(p, index: interfaceIndex, table: route.table)
        if installedRouteSet.insert(route).inserted { done.append(p) }
        if p.length == 0 { try addRules(ipv6: p.address.isV6) }
      }
    } catch {
      _ = remove(done)
      throw error
    }
  }

  /// Removes routes at run time (the caller passes only prefixes no tunnel routes any more).
  /// - Returns: one line per route or rule that could not be removed.
  public func remove(_ prefixes: [Prefix]) -> [String] {
    var gone: [Route] = []
    var families = Set<Bool>()
    for p in prefixes {
      let route = Route(prefix: p, table: p.length == 0 ? RouteInstaller.table : RouteInstaller.mainTable)
      if installedRouteSet.remove(route) != nil { gone.append(route) }
      if p.length == 0 { families.insert(p.address.isV6) }
    }
    guard !gone.isEmpty else { return [] }
    var rulesGone: [PolicyRule] = []
    for ipv6 in families
    where !installedRouteSet.contains(where: { $0.prefix.length == 0 && $0.prefix.address.isV6 == ipv6 }) {
      rulesGone += installedRules.filter { $0.ipv6 == ipv6 }
    }
    installedRules.removeAll { rulesGone.contains($0) }
    return remove(rules: rulesGone, routes: gone)
  }

  /// The wg-quick rules of one family, if not installed yet.
  private func addRules(ipv6: Bool) throws(NetlinkError) {
    let wanted = [
      PolicyRule(
        ipv6: ipv6, priority: RouteInstaller.suppressRulePriority, table: RouteInstaller.mainTable,
        suppressPrefixLength: 0),
      PolicyRule(
        ipv6: ipv6, priority: RouteInstaller.fwmarkRulePriority, table: RouteInstaller.table,
        fwmark: RouteInstaller.fwmark,
        invertFwmark: true),
    ]
    for rule in wanted where !installedRules.contains(rule) {
      do throws(NetlinkError) {
        try netlink.addRule(rule)
      } catch  where error.errno == EEXIST {}
      installedRules.append(rule)
    }
  }

  /// The routes and rules `config` calls for (pure; no I/O).
  /// - Returns: routes deduplicated in configuration order, and per family with a `/0` prefix
  ///   the suppress rule then the fwmark rule, IPv4 first.
  public static func plan(_ config: Config) -> (routes: [Route], rules: [PolicyRule]) {
    var routes: [Route] = []
    var seen = Set<Prefix>()
    for tunnel in config.tunnels {
      for prefix in prefixes(of: tunnel) where seen.insert(prefix).inserted {
        routes.append(Route(prefix: prefix, table: prefix.length == 0 ? table : mainTable))
      }
    }
    var rules: [PolicyRule] = []
    for ipv6 in [false, true] where routes.contains(where: { $0.prefix.length == 0 && $0.prefix.address.isV6 == ipv6 })
    {
      rules.append(
        PolicyRule(ipv6: ipv6, priority: suppressRulePriority, table: mainTable, suppressPrefixLength: 0))
      rules.append(
        PolicyRule(ipv6: ipv6, priority: fwmarkRulePriority, table: table, fwmark: fwmark, invertFwmark: true))
    }
    return (routes, rules)
  }

  /// Installs the routes (replacing identical or conflicting ones), then the rules (an identical
  /// rule already present, e.g. left by a crashed run, counts as installed). Calling it again
  /// installs only what is missing from this installer's record.
  /// - Throws: the first ``NetlinkError``, after removing what this call had installed.
  public func install() throws(NetlinkError) {
    var added: [Route] = []
    let rulesBefore = installedRules.count
    do throws(NetlinkError) {
      for route in routes where !installedRouteSet.contains(route) {
        try netlink.addRoute(route.prefix, index: interfaceIndex, table: route.table)
        added.append(route)
        installedRouteSet.insert(route)
      }
      for rule in rules where !installedRules.contains(rule) {
        do throws(NetlinkError) {
          try netlink.addRule(rule)
        } catch  where error.errno == EEXIST {}
        installedRules.append(rule)
      }
    } catch {
      // Take back what this call added; what was installed before stays (it may still be in use).
      for rule in installedRules[rulesBefore...].reversed() { try? netlink.deleteRule(rule) }
      for route in added.reversed() {
        try? netlink.deleteRoute(route.prefix, index: interfaceIndex, table: route.table)
        installedRouteSet.remove(route)
      }
      installedRules.removeSubrange(rulesBefore...)
      throw error
    }
  }

  /// Removes the rules, then the routes, this installer installed; best effort and idempotent.
  /// Something already gone (the TUN's routes vanish with the TUN) is not a problem.
  /// - Returns: one line per thing that could not be removed (empty when all went well).
  @discardableResult
  public func uninstall() -> [String] {
    let problems = remove(rules: installedRules, routes: installedRoutes)
    installedRules = []
    installedRouteSet = []
    return problems
  }

  /// The routes installed, in configuration order where known.
  private var installedRoutes: [Route] {
    let planned = Set(routes)
    return routes.filter { installedRouteSet.contains($0) } + installedRouteSet.filter { !planned.contains($0) }
  }

  /// Deletes rules, then routes, last installed first; what is already gone is not a problem.
  private func remove(rules: [PolicyRule], routes: [Route]) -> [String] {
    var problems: [String] = []
    // Rules first: without them nothing is steered into espd's table while its routes go.
    for rule in rules.reversed() {
      do throws(NetlinkError) {
        try netlink.deleteRule(rule)
      } catch  where error.errno == ENOENT {
      } catch {
        problems.append(error.description)
      }
    }
    for route in routes.reversed() {
      do throws(NetlinkError) {
        try netlink.deleteRoute(route.prefix, index: interfaceIndex, table: route.table)
      } catch  where error.errno == ESRCH || error.errno == ENODEV {
      } catch {
        problems.append(error.description)
      }
    }
    return problems
  }

  /// What is installed now, one line each for espd's start-up log:
  /// `route 198.51.100.0/24 dev espd0 table main`, `rule -4 pref 32765 not fwmark 0x4553 lookup 17747`.
  public var installedDescription: [String] {
    installedRoutes.map { "route \($0.prefix) dev \(interfaceName) table \(Netlink.tableName($0.table))" }
      + installedRules.map { "rule \($0)" }
  }

  /// Sets SO_MARK to ``fwmark`` on a socket so the policy rule keeps its packets out of the TUN.
  /// - Parameter fd: an open socket descriptor (borrowed; a closed one is a programmer error).
  /// - Throws: ``NetlinkError`` (EPERM without CAP_NET_ADMIN).
  public static func markSocket(_ fd: Int32) throws(NetlinkError) {
    var mark = fwmark
    do throws(SystemError) {
      try Sys.setOption(fd, SOL_SOCKET, SO_MARK, &mark, "set SO_MARK 0x\(String(fwmark, radix: 16)) on socket \(fd)")
    } catch {
      throw NetlinkError(operation: error.operation, errno: error.errno)
    }
  }
}
