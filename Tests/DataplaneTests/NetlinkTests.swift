// SPDX-License-Identifier: Apache-2.0
// rtnetlink and the route installer against the kernel, each test inside its own network namespace.
import ESP
import Glibc
import Testing

@testable import Dataplane
@testable import Forwarding

/// Root only: each test runs its netlink work on a fresh thread that first moves into a new network
/// namespace, so the machine's own links, routes and rules are never touched. Assertions are made
/// back on the test's thread, on what the namespace thread observed.
@Suite(.enabled(if: getuid() == 0)) struct NetlinkTests {
  static let espd = RouteInstaller.table
  static let main = RouteInstaller.mainTable

  @Test func linkAddressesRoutesAndRules() throws {
    let routes: [(Prefix, UInt32)] = [
      (p("198.51.100.0/24"), Self.main), (p("203.0.113.0/24"), Self.espd), (p("0.0.0.0/0"), Self.espd),
      (p("2001:db8:1::/48"), Self.main), (p("::/0"), Self.espd),
    ]
    let rules = [
      PolicyRule(ipv6: false, priority: 32764, table: Self.main, suppressPrefixLength: 0),
      PolicyRule(ipv6: false, priority: 32765, table: Self.espd, fwmark: 0x4553, invertFwmark: true),
      PolicyRule(ipv6: true, priority: 32764, table: Self.main, suppressPrefixLength: 0),
      PolicyRule(ipv6: true, priority: 32765, table: Self.espd, fwmark: 0x4553, invertFwmark: true),
    ]
    let addresses = [p("192.0.2.1/24"), p("2001:db8::1/64")]
    let seen = try inPrivateNetworkNamespace {
      let nl = try Netlink()
      guard let lo = nl.interfaceIndex(named: "lo") else { throw NetlinkError(operation: "find lo", errno: ENODEV) }
      try nl.setLink(index: lo, up: true, mtu: 65000)
      let mtu = interfaceMTU("lo")
      let start = try Snapshot(nl)
      for a in addresses { try nl.addAddress(a, index: lo) }
      try nl.addAddress(addresses[0], index: lo)  // again: replaced, not an error
      let withAddresses = try Snapshot(nl)
      for (prefix, table) in routes { try nl.addRoute(prefix, index: lo, table: table) }
      try nl.addRoute(routes[0].0, index: lo, table: routes[0].1)  // again: replaced
      let withRoutes = try Snapshot(nl)
      for r in rules { try nl.addRule(r) }
      let withRules = try Snapshot(nl)
      var duplicate: Int32 = 0
      do throws(NetlinkError) { try nl.addRule(rules[0]) } catch { duplicate = error.errno }
      for r in rules { try nl.deleteRule(r) }
      for (prefix, table) in routes { try nl.deleteRoute(prefix, index: lo, table: table) }
      for a in addresses { try nl.deleteAddress(a, index: lo) }
      // IPv6 addrconf adds and removes an address's local route asynchronously: let it settle.
      var end = try Snapshot(nl)
      for _ in 0..<20 where end != start {
        usleep(50_000)
        end = try Snapshot(nl)
      }
      return (lo, mtu, start, withAddresses, withRoutes, withRules, duplicate, end)
    }
    let (lo, mtu, start, withAddresses, withRoutes, withRules, duplicate, end) = seen
    #expect(lo == 1)
    #expect(mtu == 65000)
    // Assigning an address makes the kernel add its prefix route (proto kernel): IPv6 to main,
    // IPv4 on a loopback device to table local (as for 127.0.0.0/8).
    #expect(withAddresses.routes.subtracting(start.routes).isSuperset(of: ["192.0.2.0/24 oif 1 table 255"]))
    #expect(withAddresses.routes.subtracting(start.routes).isSuperset(of: ["2001:db8::/64 oif 1 table 254"]))
    // (Table local, 255, is left out: IPv6 addrconf adds an address's local route asynchronously,
    // so it may land in either snapshot.)
    #expect(
      withRoutes.routes.subtracting(withAddresses.routes).filter { !$0.hasSuffix(" table 255") }
        == Set(routes.map { "\($0.0) oif 1 table \($0.1)" }))
    #expect(withRules.rules.filter { !withRoutes.rules.contains($0) } == rules)
    #expect(duplicate == EEXIST)  // NLM_F_EXCL: the kernel would otherwise add a second copy
    #expect(end == start)
  }

  @Test func routeInstallerFullTunnelSiteAndAlias() throws {
    let config = Self.config()
    let seen = try inPrivateNetworkNamespace {
      let nl = try Netlink()
      let lo: Int32 = 1
      try nl.setLink(index: lo, up: true, mtu: nil)
      let before = try Snapshot(nl)
      // An identical rule left behind (say by a crashed run) is adopted, not duplicated.
      try nl.addRule(PolicyRule(ipv6: true, priority: 32764, table: Self.main, suppressPrefixLength: 0))
      let installer = RouteInstaller(netlink: nl, interfaceIndex: lo, config: config)
      try installer.install()
      try installer.install()  // again: nothing new
      let installed = try Snapshot(nl)
      let description = installer.installedDescription
      let problems = installer.uninstall()
      let again = installer.uninstall()
      return (before, installed, description, problems, again, try Snapshot(nl))
    }
    let (before, installed, description, problems, again, after) = seen
    #expect(
      installed.routes.subtracting(before.routes) == [
        "0.0.0.0/0 oif 1 table 17747", "::/0 oif 1 table 17747", "198.51.100.0/24 oif 1 table 254",
        "198.51.100.128/25 oif 1 table 254", "198.51.100.130/32 oif 1 table 254",
      ])
    #expect(
      installed.rules.filter { !before.rules.contains($0) } == [
        PolicyRule(ipv6: false, priority: 32764, table: Self.main, suppressPrefixLength: 0),
        PolicyRule(ipv6: false, priority: 32765, table: Self.espd, fwmark: 0x4553, invertFwmark: true),
        PolicyRule(ipv6: true, priority: 32764, table: Self.main, suppressPrefixLength: 0),
        PolicyRule(ipv6: true, priority: 32765, table: Self.espd, fwmark: 0x4553, invertFwmark: true),
      ])
    #expect(
      description == [
        "route 0.0.0.0/0 dev lo table 17747", "route ::/0 dev lo table 17747",
        "route 198.51.100.0/24 dev lo table main",
        "route 198.51.100.128/25 dev lo table main", "route 198.51.100.130/32 dev lo table main",
        "rule -4 pref 32764 lookup main suppress_prefixlength 0", "rule -4 pref 32765 not fwmark 0x4553 lookup 17747",
        "rule -6 pref 32764 lookup main suppress_prefixlength 0", "rule -6 pref 32765 not fwmark 0x4553 lookup 17747",
      ])
    #expect(problems == [] && again == [])
    #expect(after == before)
  }

  @Test func failedInstallRemovesWhatItInstalled() throws {
    // The second prefix has host bits set (a validated config never does): the kernel refuses it
    // after the first route is in.
    var config = Self.config()
    config.tunnels = [Self.tunnel("bad", remoteTS: [p("198.51.100.0/24"), p("203.0.113.1/24")])]
    let seen = try inPrivateNetworkNamespace {
      let nl = try Netlink()
      try nl.setLink(index: 1, up: true, mtu: nil)
      let before = try Snapshot(nl)
      var failure: NetlinkError?
      do throws(NetlinkError) {
        try RouteInstaller(netlink: nl, interfaceIndex: 1, config: config).install()
      } catch { failure = error }
      return (before, failure, try Snapshot(nl))
    }
    let (before, failure, after) = seen
    #expect(failure?.errno == EINVAL)
    #expect(failure?.operation == "add route 203.0.113.1/24 via lo")
    #expect(failure?.kernelMessage == "Invalid prefix for given prefix length")  // NETLINK_EXT_ACK
    #expect(after == before)
  }

  @Test func errorNamesOperationAndErrno() throws {
    let failure = try inPrivateNetworkNamespace { () throws -> NetlinkError? in
      let nl = try Netlink()
      do throws(NetlinkError) {
        try nl.addRoute(p("198.51.100.0/24"), index: 9999, table: Self.main)
      } catch { return error }
      return nil
    }
    let error = try #require(failure)
    #expect(error.errno == ENODEV)
    #expect(error.description.hasPrefix("cannot add route 198.51.100.0/24 via ifindex 9999: No such device"))
    let denied = NetlinkError(operation: "add route 198.51.100.0/24 via espd0", errno: EPERM)
    #expect(
      denied.description
        == "cannot add route 198.51.100.0/24 via espd0: Operation not permitted (are you root / CAP_NET_ADMIN?)")
  }

  @Test func markSocketSetsSOMark() throws {
    let mark = try inPrivateNetworkNamespace { () throws -> UInt32 in
      let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
      defer { close(fd) }
      try RouteInstaller.markSocket(fd)
      var value: UInt32 = 0
      var length = socklen_t(4)
      _ = getsockopt(fd, SOL_SOCKET, SO_MARK, &value, &length)
      return value
    }
    #expect(mark == 0x4553)
  }

  // MARK: Fixtures

  /// A full-tunnel tunnel (both families), a site with a nested prefix, and two transport tunnels
  /// sharing one alias (installed once).
  static func config() -> Config {
    var l2tp = tunnel("l2tp", remoteTS: [])
    l2tp.mode = .transport
    l2tp.alias = IPAddress("198.51.100.130")
    var l2tp2 = l2tp
    l2tp2.name = "l2tp2"
    return Config(
      listen: [Endpoint(address: IPAddress("192.0.2.1")!, port: 4500)],
      tunnels: [
        tunnel("full", remoteTS: [p("0.0.0.0/0"), p("::/0")]),
        tunnel("site", remoteTS: [p("198.51.100.0/24"), p("198.51.100.128/25")]), l2tp, l2tp2,
      ])
  }

  static func tunnel(_ name: String, remoteTS: [Prefix]) -> TunnelConfig {
    let sa = SAConfig(spi: 0x100, algorithm: .aes128gcm16, key: [UInt8](repeating: 1, count: 20))
    return TunnelConfig(name: name, mode: .tunnel, remoteTS: remoteTS, inbound: [sa], outbound: sa)
  }
}

/// A prefix from text; the tests only use well-formed literals.
private func p(_ text: String) -> Prefix {
  let parts = text.split(separator: "/")
  return Prefix(address: IPAddress(parts[0])!, length: Int(parts[1])!)
}

/// The routes in tables main, espd's and local, and all lookup rules, of both families.
private struct Snapshot: Equatable {
  var routes: Set<String> = []
  var rules: [PolicyRule] = []

  init(_ nl: Netlink) throws(NetlinkError) {
    for ipv6 in [false, true] {
      for table in [RouteInstaller.mainTable, RouteInstaller.table, 255] {
        for (prefix, oif) in try nl.routes(table: table, ipv6: ipv6) {
          routes.insert("\(prefix) oif \(oif) table \(table)")
        }
      }
      rules += try nl.rules(ipv6: ipv6)
    }
  }
}

/// The MTU of interface `name` in the calling thread's namespace (SIOCGIFMTU), or -1.
private func interfaceMTU(_ name: String) -> Int32 {
  let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
  defer { close(fd) }
  var request = ifreq()
  withUnsafeMutableBytes(of: &request.ifr_ifrn) { buffer in
    for (i, c) in name.utf8.prefix(15).enumerated() { buffer[i] = c }
  }
  let siocgifmtu: UInt = 0x8921  // SIOCGIFMTU (linux/sockios.h)
  let rc = withUnsafeMutablePointer(to: &request) { ioctl(fd, siocgifmtu, UnsafeMutableRawPointer($0)) }
  return rc == 0 ? request.ifr_ifru.ifru_mtu : -1
}

/// Why a private namespace could not be entered.
struct NamespaceError: Error, CustomStringConvertible {
  var errno: Int32
  var description: String { "cannot enter a new network namespace: \(String(cString: strerror(errno)))" }
}

/// Runs `body` on a new thread that first calls `unshare(CLONE_NEWNET)`, waits for it, and returns
/// its result (or rethrows its error). Network namespaces are per thread: the thread exits after
/// `body`, and the namespace, with everything `body` configured in it, disappears once the sockets
/// made in it are closed. Assert on the result, not inside `body` (it runs outside the test's task).
func inPrivateNetworkNamespace<T>(_ body: () throws -> T) throws -> T {
  try withoutActuallyEscaping(body) { body in
    var result: Result<T, any Error>?
    let job = NamespaceJob {
      // Glibc declares unshare only under _GNU_SOURCE, so it is looked up at run time.
      typealias Unshare = @convention(c) (Int32) -> Int32
      let cloneNewNet: Int32 = 0x4000_0000  // CLONE_NEWNET (linux/sched.h)
      guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "unshare") else {
        result = .failure(NamespaceError(errno: ENOSYS))
        return
      }
      guard unsafeBitCast(symbol, to: Unshare.self)(cloneNewNet) == 0 else {
        result = .failure(NamespaceError(errno: errno))
        return
      }
      result = Result { try body() }
    }
    var thread = pthread_t()
    let context = Unmanaged.passRetained(job).toOpaque()
    let rc = pthread_create(
      &thread, nil,
      { raw in
        guard let raw else { return nil }
        Unmanaged<NamespaceJob>.fromOpaque(raw).takeRetainedValue().work()
        return nil
      }, context)
    guard rc == 0 else {
      Unmanaged<NamespaceJob>.fromOpaque(context).release()
      throw NamespaceError(errno: rc)
    }
    pthread_join(thread, nil)
    guard let result else { throw NamespaceError(errno: EINTR) }
    return try result.get()
  }
}

/// The work handed to the namespace thread (through pthread_create's context pointer).
private final class NamespaceJob {
  let work: () -> Void
  init(_ work: @escaping () -> Void) { self.work = work }
}
