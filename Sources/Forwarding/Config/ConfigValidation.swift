// SPDX-License-Identifier: Apache-2.0
// Rules across tunnels: unique names, SPIs and prefixes, transport aliases, and alias allocation from the pool.
import ESP

extension ConfigParser {
  /// Checks the rules that span tunnels and allocates missing transport aliases, for a
  /// configuration assembled in code or changed at run time (`add_tunnel`, `rekey`): append the
  /// tunnel or SA parsed with ``parseTunnel(_:path:)`` or ``parseSA(_:path:direction:)``, then call this.
  ///
  /// The rules: tunnel names unique; inbound SPIs unique across all tunnels, outbound SPIs likewise;
  /// no `remote_ts` prefix in two tunnels (nested prefixes are fine); a transport tunnel has an
  /// `alias` or takes one from `transport_alias_pool` (in tunnel order, skipping explicit aliases,
  /// the pool's network and broadcast addresses and the tun's addresses); a transport alias is not
  /// one of the tun's addresses, and the tun has an address of its family. Several tunnels may
  /// share an explicit alias. Fields within one tunnel are not checked again.
  /// - Parameter config: the configuration; problems name tunnels `tunnels[i]`.
  /// - Returns: the configuration with every transport tunnel's alias set, or every problem found.
  public static func validate(_ config: Config) -> Result<Config, ConfigErrors> {
    var drafts: [TunnelDraft] = config.tunnels.enumerated().map { i, t in
      let path = ConfigPath.element("tunnels", i)
      var d = TunnelDraft(path: path)
      d.name = t.name
      d.mode = t.mode
      d.remoteTS = t.remoteTS.enumerated().map { ($1, ConfigPath.element(path + ".remote_ts", $0)) }
      d.alias = t.alias
      d.aliasGiven = t.alias != nil
      d.inboundSPIs = t.inbound.enumerated().map { ($1.spi, "\(path).inbound[\($0)].spi") }
      d.outboundSPI = (t.outbound.spi, "\(path).outbound.spi")
      d.tunnel = t
      return d
    }
    var problems = Problems()
    let pool = config.transportAliasPool
    crossCheck(&drafts, tun: config.tun, pool: pool, poolGiven: pool != nil, &problems)
    checkLimits(config.tunnels, config.limits, &problems)
    guard problems.isEmpty else { return .failure(ConfigErrors(problems: problems.lines)) }
    var out = config
    out.tunnels = drafts.compactMap(\.tunnel)
    return .success(out)
  }

  /// The cross-tunnel rules over drafts (tunnels with problems of their own take part with what is
  /// known of them). Sets `alias` on transport drafts that take one from the pool.
  /// - Parameters:
  ///   - tun: the tun, or nil if it had problems (then the checks against its addresses are skipped).
  ///   - pool: `transport_alias_pool`, or nil if absent or invalid.
  ///   - poolGiven: whether the pool was given (an invalid pool was reported already).
  static func crossCheck(
    _ drafts: inout [TunnelDraft], tun: TunConfig?, pool: Prefix?, poolGiven: Bool, _ problems: inout Problems
  ) {
    var names: [String: String] = [:]
    var inbound: [UInt32: String] = [:]
    var outbound: [UInt32: String] = [:]
    var prefixes: [Prefix: (tunnel: Int, path: String)] = [:]
    for (i, d) in drafts.enumerated() {
      if let name = d.name {
        let path = ConfigPath.member(d.path, "name")
        if let first = names[name] {
          problems.add(path, expected: "a name no other tunnel has", got: "\(JSONValue.quoted(name)) (also \(first))")
        } else {
          names[name] = path
        }
      }
      for (spi, path) in d.inboundSPIs {
        if let first = inbound[spi] {
          problems.add(path, expected: "an SPI no other inbound SA has", got: "\(spiText(spi)) (also \(first))")
        } else {
          inbound[spi] = path
        }
      }
      if let (spi, path) = d.outboundSPI {
        if let first = outbound[spi] {
          problems.add(path, expected: "an SPI no other outbound SA has", got: "\(spiText(spi)) (also \(first))")
        } else {
          outbound[spi] = path
        }
      }
      for (prefix, path) in d.remoteTS {
        if let first = prefixes[prefix] {
          // The same prefix twice in one tunnel was reported with the tunnel.
          if first.tunnel != i {
            problems.add(
              path, expected: "a prefix no other tunnel routes (nested prefixes are fine)",
              got: "\(prefix) (also \(first.path))")
          }
        } else {
          prefixes[prefix] = (i, path)
        }
      }
    }
    checkAliases(&drafts, tun: tun, pool: pool, poolGiven: poolGiven, &problems)
  }

  /// Explicit aliases against the tun, then allocation from the pool, in tunnel order.
  private static func checkAliases(
    _ drafts: inout [TunnelDraft], tun: TunConfig?, pool: Prefix?, poolGiven: Bool, _ problems: inout Problems
  ) {
    let tunAddresses = Set(tun?.addresses.map(\.address) ?? [])
    func tunLacksFamily(of a: IPAddress) -> Bool {
      guard let tun else { return false }
      return !tun.addresses.contains { $0.address.isV6 == a.isV6 }
    }
    func family(_ a: IPAddress) -> String { a.isV6 ? "IPv6" : "IPv4" }

    var used = tunAddresses
    for d in drafts where d.mode == .transport {
      guard let a = d.alias else { continue }
      used.insert(a)
      let path = ConfigPath.member(d.path, "alias")
      if tunAddresses.contains(a) {
        problems.add(path, expected: "an address other than the tun's own", got: "\(a)")
      } else if tunLacksFamily(of: a) {
        problems.add(
          path, expected: "an \(family(a)) address in tun.addresses (decrypted packets are addressed to it)",
          got: "none for alias \(a)")
      }
    }

    var allocator = pool.map { AliasAllocator(pool: $0) }
    var poolFamilyReported = false
    for i in drafts.indices where drafts[i].mode == .transport && !drafts[i].aliasGiven {
      let path = ConfigPath.member(drafts[i].path, "alias")
      guard let pool, allocator != nil else {
        if !poolGiven {
          problems.add(
            path, expected: "an address for a transport tunnel (or a global transport_alias_pool)", got: "nothing")
        }
        continue
      }
      guard let a = allocator?.next(skipping: used) else {
        problems.add(path, expected: "a free address in transport_alias_pool \(pool)", got: "none left")
        continue
      }
      used.insert(a)
      drafts[i].alias = a
      drafts[i].tunnel?.alias = a
      if tunLacksFamily(of: a) && !poolFamilyReported {
        poolFamilyReported = true
        problems.add(
          "transport_alias_pool",
          expected: "an \(family(a)) address in tun.addresses (decrypted packets are addressed to it)",
          got: "none for pool \(pool)")
      }
    }
  }

  /// `0xc1a0b001`: eight hex digits, as `ip xfrm` prints SPIs.
  package static func spiText(_ spi: UInt32) -> String {
    let h = String(spi, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - h.count) + h
  }
}

/// Hands out the addresses of a pool in ascending order, skipping the network address (and for
/// IPv4 the broadcast address) unless the pool is a /31, /32, /127 or /128 (RFC 3021, RFC 6164).
/// Addresses are 128-bit (high, low) pairs, so an IPv6 pool of any size works without overflow.
package struct AliasAllocator {
  private let v6: Bool
  private var cursor: (UInt64, UInt64)?
  private let last: (UInt64, UInt64)

  package init(pool: Prefix) {
    let network = pool.network
    v6 = pool.address.isV6
    let first: (UInt64, UInt64)
    var end: (UInt64, UInt64)
    switch network.address {
    case .v4(let a):
      let n = min(max(pool.length, 0), 32)
      first = (0, UInt64(a))
      end = (0, UInt64(a | (UInt32.max >> n)))
    case .v6(let h, let l):
      let n = min(max(pool.length, 0), 128)
      first = (h, l)
      end = (h | (UInt64.max >> n), l | (n <= 64 ? UInt64.max : UInt64.max >> (n - 64)))
    }
    let skipEnds = v6 ? pool.length <= 126 : pool.length <= 30
    cursor = skipEnds ? Self.successor(first) : first
    if skipEnds && !v6 { end.1 -= 1 }  // the broadcast address
    last = end
  }

  /// The next address of the pool not in `used`, or nil when the pool is exhausted.
  mutating func next(skipping used: Set<IPAddress>) -> IPAddress? { next { used.contains($0) } }

  /// The next address of the pool for which `used` is false, or nil when the pool is exhausted
  /// (the control model asks its alias index).
  package mutating func next(skipping used: (IPAddress) -> Bool) -> IPAddress? {
    while let c = cursor, c <= last {
      cursor = Self.successor(c)
      let a: IPAddress = v6 ? .v6(c.0, c.1) : .v4(UInt32(truncatingIfNeeded: c.1))
      if !used(a) { return a }
    }
    return nil
  }

  private static func successor(_ a: (UInt64, UInt64)) -> (UInt64, UInt64)? {
    if a.1 != .max { return (a.0, a.1 + 1) }
    return a.0 == .max ? nil : (a.0 + 1, 0)
  }
}
