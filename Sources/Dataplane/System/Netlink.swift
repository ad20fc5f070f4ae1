// SPDX-License-Identifier: Apache-2.0
// rtnetlink requests for links, addresses, routes and policy rules, acknowledged one by one.
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// A netlink request the kernel refused (or that could not be made): what and why.
public struct NetlinkError: Error, CustomStringConvertible, Equatable {
  /// What was being done, e.g. "add route 198.51.100.0/24 via espd0".
  public let operation: String
  /// The positive errno the kernel answered with (or the failed system call set).
  public let errno: Int32
  /// The kernel's extended-ack text (NLMSGERR_ATTR_MSG), when it gave one.
  public let kernelMessage: String?

  /// Creates an error for `operation` failing with `errno`.
  public init(operation: String, errno: Int32, kernelMessage: String? = nil) {
    self.operation = operation
    self.errno = errno
    self.kernelMessage = kernelMessage
  }

  /// `cannot add route 198.51.100.0/24 via espd0: Operation not permitted (are you root / CAP_NET_ADMIN?)`.
  public var description: String {
    var s = "cannot \(operation): \(String(cString: strerror(errno)))"
    if let kernelMessage, !kernelMessage.isEmpty { s += " (kernel: \(kernelMessage))" }
    if errno == EPERM || errno == EACCES { s += " (are you root / CAP_NET_ADMIN?)" }
    return s
  }
}

/// An IP policy-routing rule of the kind `ip rule` adds with action "lookup" (FR_ACT_TO_TBL).
///
/// Dumped rules are projected onto these fields; selectors it cannot express (from, to, iif, ...)
/// are ignored.
public struct PolicyRule: Sendable, Equatable, Hashable, CustomStringConvertible {
  /// IPv6 rule (`ip -6 rule`) rather than IPv4.
  public var ipv6: Bool
  /// FRA_PRIORITY (`pref`): lower numbers are consulted first.
  public var priority: UInt32
  /// FRA_TABLE: the routing table to look up.
  public var table: UInt32
  /// FRA_FWMARK, matched with mask 0xffffffff; nil matches every packet.
  public var fwmark: UInt32?
  /// FIB_RULE_INVERT: the rule applies to packets that do *not* match (`not fwmark M`).
  public var invertFwmark: Bool
  /// FRA_SUPPRESS_PREFIXLEN: reject a lookup result whose prefix is this long or shorter.
  public var suppressPrefixLength: UInt32?

  /// Creates a rule; see the properties.
  public init(
    ipv6: Bool, priority: UInt32, table: UInt32, fwmark: UInt32? = nil, invertFwmark: Bool = false,
    suppressPrefixLength: UInt32? = nil
  ) {
    self.ipv6 = ipv6
    self.priority = priority
    self.table = table
    self.fwmark = fwmark
    self.invertFwmark = invertFwmark
    self.suppressPrefixLength = suppressPrefixLength
  }

  /// As `ip rule` shows it: `-4 pref 32765 not fwmark 0x4553 lookup 17747`.
  public var description: String {
    var s = "\(ipv6 ? "-6" : "-4") pref \(priority)"
    if invertFwmark { s += " not" }
    if let fwmark { s += " fwmark 0x\(String(fwmark, radix: 16))" }
    s += " lookup \(Netlink.tableName(table))"
    if let suppressPrefixLength { s += " suppress_prefixlength \(suppressPrefixLength)" }
    return s
  }
}

/// One NETLINK_ROUTE socket: requests to change links, addresses, routes and rules, each
/// sent with NLM_F_ACK and a sequence number and answered by the kernel before the call returns.
///
/// The socket belongs to the network namespace of the thread that created it. Owns its
/// descriptor (closed in `deinit`). Not thread-safe; used by the control path at start-up and exit.
public final class Netlink {
  private let owned: OwnedFD
  var fd: Int32 { owned.raw }
  var receiveBuffer = [UInt8](repeating: 0, count: Netlink.receiveBufferSize)
  private var sequence: UInt32

  /// Opens the socket.
  /// - Throws: ``NetlinkError`` if the socket cannot be created.
  public init() throws(NetlinkError) {
    owned = try Netlink.openSocket()
    // Start from the clock, as iproute2 does, so replies to a previous process are not ours.
    sequence = UInt32(truncatingIfNeeded: time(nil))
  }

  /// The index of the interface called `name` (`if_nametoindex`), or nil if there is none.
  public func interfaceIndex(named name: String) -> Int32? {
    let index = if_nametoindex(name)
    return index == 0 ? nil : Int32(bitPattern: index)
  }

  /// The name of interface `index` (`if_indextoname`), or nil if there is none.
  public func interfaceName(index: Int32) -> String? {
    var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
    guard if_indextoname(UInt32(bitPattern: index), &name) != nil else { return nil }
    return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// Sets a link up or down and optionally its MTU (RTM_NEWLINK, `ip link set dev X up mtu N`).
  /// - Parameters:
  ///   - index: the interface index.
  ///   - up: the new state of IFF_UP.
  ///   - mtu: the new MTU (IFLA_MTU), or nil to leave it.
  /// - Throws: ``NetlinkError`` with the kernel's errno.
  public func setLink(index: Int32, up: Bool, mtu: Int?) throws(NetlinkError) {
    try execute(.link(index: index, up: up, mtu: mtu)) {
      "set link \(linkName(index)) \(up ? "up" : "down")" + (mtu.map { " mtu \($0)" } ?? "")
    }
  }

  /// Assigns an address with its prefix length (RTM_NEWADDR, `ip addr replace`). IPv6 addresses
  /// get IFA_F_NODAD so they are usable at once. Assigning an existing address again is not an error.
  /// - Parameters:
  ///   - prefix: the address and its prefix length (`198.51.100.1/24`).
  ///   - index: the interface index.
  /// - Throws: ``NetlinkError`` with the kernel's errno.
  public func addAddress(_ prefix: Prefix, index: Int32) throws(NetlinkError) {
    let flags = NLM.create | NLM.replace
    try execute(.address(NLM.newAddress, flags: flags, prefix, index: index)) {
      "add address \(prefix) to \(linkName(index))"
    }
  }

  /// Removes an address (RTM_DELADDR).
  /// - Throws: ``NetlinkError``; EADDRNOTAVAIL if the interface does not have it.
  public func deleteAddress(_ prefix: Prefix, index: Int32) throws(NetlinkError) {
    try execute(.address(NLM.deleteAddress, flags: 0, prefix, index: index)) {
      "delete address \(prefix) from \(linkName(index))"
    }
  }

  /// Adds or replaces a directly connected route (RTM_NEWROUTE with NLM_F_CREATE|NLM_F_REPLACE,
  /// scope link, protocol static): `ip route replace PREFIX dev X table T`.
  /// - Parameters:
  ///   - prefix: the destination; length 0 is a default route.
  ///   - index: the outgoing interface (RTA_OIF).
  ///   - table: the routing table; ids above 255 travel in RTA_TABLE.
  /// - Throws: ``NetlinkError`` with the kernel's errno (ENODEV: no such interface; ENETDOWN: it is down).
  public func addRoute(_ prefix: Prefix, index: Int32, table: UInt32) throws(NetlinkError) {
    let flags = NLM.create | NLM.replace
    try execute(.route(NLM.newRoute, flags: flags, prefix, index: index, table: table)) {
      "add route \(prefix) via \(linkName(index))" + Netlink.tableSuffix(table)
    }
  }

  /// Removes the route to `prefix` through interface `index` in `table` (RTM_DELROUTE), whatever
  /// its scope and protocol.
  /// - Throws: ``NetlinkError``; ESRCH if there is no such route.
  public func deleteRoute(_ prefix: Prefix, index: Int32, table: UInt32) throws(NetlinkError) {
    try execute(.route(NLM.deleteRoute, flags: 0, prefix, index: index, table: table)) {
      "delete route \(prefix) via \(linkName(index))" + Netlink.tableSuffix(table)
    }
  }

  /// Adds a policy rule (RTM_NEWRULE with NLM_F_CREATE|NLM_F_EXCL).
  ///
  /// Without NLM_F_EXCL the kernel would add a second, identical rule; with it an identical rule
  /// is refused with EEXIST, which a caller wanting "present" treats as success.
  /// - Throws: ``NetlinkError``; EEXIST if the same rule is already there.
  public func addRule(_ rule: PolicyRule) throws(NetlinkError) {
    try execute(.rule(NLM.newRule, flags: NLM.create | NLM.exclusive, rule)) { "add rule \(rule)" }
  }

  /// Removes the first policy rule matching `rule` (RTM_DELRULE).
  /// - Throws: ``NetlinkError``; ENOENT if there is none.
  public func deleteRule(_ rule: PolicyRule) throws(NetlinkError) {
    try execute(.rule(NLM.deleteRule, flags: 0, rule)) { "delete rule \(rule)" }
  }

  /// The routes in `table` of one family (an RTM_GETROUTE dump, filtered here): each
  /// destination prefix with its outgoing interface (0 if it has none, e.g. multipath).
  /// Route cache entries (RTM_F_CLONED) are left out.
  /// - Throws: ``NetlinkError`` if the dump fails.
  public func routes(table: UInt32, ipv6: Bool) throws(NetlinkError) -> [(Prefix, Int32)] {
    let messages = try dump(.dump(NLM.getRoute, ipv6: ipv6)) { "list \(ipv6 ? "IPv6" : "IPv4") routes" }
    var out: [(Prefix, Int32)] = []
    for m in messages where m.type == NLM.newRoute {
      let p = m.payload
      guard netlinkLoad(UInt8.self, p, at: 0) == netlinkFamily(ipv6: ipv6),
        let length = netlinkLoad(UInt8.self, p, at: 1),
        let headerTable = netlinkLoad(UInt8.self, p, at: 4), let flags = netlinkLoad(UInt32.self, p, at: 8),
        flags & RT.flagCloned == 0
      else { continue }
      let a = NetlinkAttributes(p.dropFirst(12))
      guard (a.u32(RT.attributeTable) ?? UInt32(headerTable)) == table else { continue }
      let destination = a[RT.attributeDestination].flatMap { IPAddress(networkBytes: $0) }
      let prefix = Prefix(address: destination ?? .zero(ipv6: ipv6), length: Int(length))
      out.append((prefix, Int32(bitPattern: a.u32(RT.attributeOutputInterface) ?? 0)))
    }
    return out
  }

  /// The policy rules of one family with action "lookup", in priority order (an RTM_GETRULE dump).
  /// - Throws: ``NetlinkError`` if the dump fails.
  public func rules(ipv6: Bool) throws(NetlinkError) -> [PolicyRule] {
    let messages = try dump(.dump(NLM.getRule, ipv6: ipv6)) { "list \(ipv6 ? "IPv6" : "IPv4") rules" }
    return messages.compactMap { $0.type == NLM.newRule ? PolicyRule($0) : nil }.filter { $0.ipv6 == ipv6 }
  }

  // MARK: Requests and replies

  /// Sends `request` with NLM_F_REQUEST|NLM_F_ACK and waits for its NLMSG_ERROR answer.
  private func execute(_ request: NetlinkRequest, _ operation: () -> String) throws(NetlinkError) {
    let seq = nextSequence()
    try send(request.encoded(sequence: seq, flags: NLM.request | NLM.ack), operation)
    while true {
      let datagram = try receive(operation)
      // Replies to other sequence numbers (a previous request that timed out) are skipped.
      for m in NetlinkMessage.split(datagram) where m.sequence == seq && m.type == NLM.error {
        let (code, text) = m.errorCode
        if code == 0 { return }
        throw NetlinkError(operation: operation(), errno: code, kernelMessage: text)
      }
    }
  }

  /// Sends a dump request and collects the multi-part answer up to NLMSG_DONE. A dump the kernel
  /// marks inconsistent (NLM_F_DUMP_INTR: the table changed meanwhile) is asked for again.
  private func dump(_ request: NetlinkRequest, _ operation: () -> String) throws(NetlinkError) -> [NetlinkMessage] {
    var attempt = 0
    while true {
      attempt += 1
      let seq = nextSequence()
      try send(request.encoded(sequence: seq, flags: NLM.request), operation)
      var out: [NetlinkMessage] = []
      var interrupted = false
      receiving: while true {
        let datagram = try receive(operation)
        for m in NetlinkMessage.split(datagram) where m.sequence == seq {
          if m.flags & NLM.dumpInterrupted != 0 { interrupted = true }
          switch m.type {
          case NLM.done, NLM.error:
            // NLMSG_DONE carries an int status too; non-zero means the dump failed.
            let (code, text) = m.errorCode
            if code != 0 { throw NetlinkError(operation: operation(), errno: code, kernelMessage: text) }
            break receiving
          case NLM.overrun:
            throw NetlinkError(operation: operation(), errno: ENOBUFS)
          default:
            out.append(m)
          }
        }
      }
      if !interrupted || attempt >= 3 { return out }
    }
  }

  private func nextSequence() -> UInt32 {
    sequence &+= 1
    return sequence
  }

  /// `espd0`, or `ifindex 7` if the index names no interface.
  func linkName(_ index: Int32) -> String { interfaceName(index: index) ?? "ifindex \(index)" }

  /// `main`, `local`, `default` or the number, as `ip route` shows a table.
  static func tableName(_ table: UInt32) -> String {
    switch table {
    case 253: "default"  // RT_TABLE_DEFAULT
    case RT.tableMain: "main"
    case 255: "local"  // RT_TABLE_LOCAL
    default: String(table)
    }
  }

  private static func tableSuffix(_ table: UInt32) -> String {
    table == RT.tableMain ? "" : " table \(tableName(table))"
  }
}
