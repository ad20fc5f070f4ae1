// SPDX-License-Identifier: Apache-2.0
// The rtnetlink wire format: kernel constants, request encoding and reply decoding, with no I/O.
import ESP
import Forwarding

// Glibc imports none of linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h or linux/fib_rules.h,
// so the values are spelled out here, each with the header and the name it comes from.

/// Message types and flags (linux/netlink.h, linux/rtnetlink.h).
enum NLM {
  static let protocolRoute: Int32 = 0  // NETLINK_ROUTE
  static let solNetlink: Int32 = 270  // SOL_NETLINK (bits/socket.h)
  static let capAck: Int32 = 10  // NETLINK_CAP_ACK: an error does not echo our request back
  static let extAck: Int32 = 11  // NETLINK_EXT_ACK: errors carry the kernel's message (NLMSGERR_ATTR_MSG)

  static let headerSize = 16  // sizeof(struct nlmsghdr)
  static let request: UInt16 = 0x01  // NLM_F_REQUEST
  static let ack: UInt16 = 0x04  // NLM_F_ACK
  static let dumpInterrupted: UInt16 = 0x10  // NLM_F_DUMP_INTR
  static let dump: UInt16 = 0x300  // NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
  static let replace: UInt16 = 0x100  // NLM_F_REPLACE
  static let exclusive: UInt16 = 0x200  // NLM_F_EXCL
  static let create: UInt16 = 0x400  // NLM_F_CREATE
  static let capped: UInt16 = 0x100  // NLM_F_CAPPED (on NLMSG_ERROR)
  static let ackTLVs: UInt16 = 0x200  // NLM_F_ACK_TLVS (on NLMSG_ERROR)
  static let error: UInt16 = 2  // NLMSG_ERROR
  static let done: UInt16 = 3  // NLMSG_DONE
  static let overrun: UInt16 = 4  // NLMSG_OVERRUN
  static let errorAttributeMessage: UInt16 = 1  // NLMSGERR_ATTR_MSG

  static let newLink: UInt16 = 16  // RTM_NEWLINK
  static let newAddress: UInt16 = 20  // RTM_NEWADDR
  static let deleteAddress: UInt16 = 21  // RTM_DELADDR
  static let newRoute: UInt16 = 24  // RTM_NEWROUTE
  static let deleteRoute: UInt16 = 25  // RTM_DELROUTE
  static let getRoute: UInt16 = 26  // RTM_GETROUTE
  static let newRule: UInt16 = 32  // RTM_NEWRULE
  static let deleteRule: UInt16 = 33  // RTM_DELRULE
  static let getRule: UInt16 = 34  // RTM_GETRULE
}

/// rtmsg, ifinfomsg, ifaddrmsg and fib_rule_hdr values and attribute types.
enum RT {
  static let tableMain: UInt32 = 254  // RT_TABLE_MAIN (linux/rtnetlink.h)
  static let tableUnspec: UInt8 = 0  // RT_TABLE_UNSPEC: the real id is in RTA_TABLE / FRA_TABLE
  static let protocolStatic: UInt8 = 4  // RTPROT_STATIC
  static let scopeLink: UInt8 = 253  // RT_SCOPE_LINK
  static let scopeNowhere: UInt8 = 255  // RT_SCOPE_NOWHERE: "any scope" when deleting
  static let typeUnicast: UInt8 = 1  // RTN_UNICAST
  static let flagCloned: UInt32 = 0x200  // RTM_F_CLONED: a cache entry, not a configured route
  static let attributeDestination: UInt16 = 1  // RTA_DST
  static let attributeOutputInterface: UInt16 = 4  // RTA_OIF
  static let attributeTable: UInt16 = 15  // RTA_TABLE

  static let linkMTU: UInt16 = 4  // IFLA_MTU (linux/if_link.h)

  static let addressAddress: UInt16 = 1  // IFA_ADDRESS (linux/if_addr.h)
  static let addressLocal: UInt16 = 2  // IFA_LOCAL
  static let addressFlags: UInt16 = 8  // IFA_FLAGS (u32, extends ifa_flags)
  static let addressNoDAD: UInt8 = 0x02  // IFA_F_NODAD

  static let ruleInvert: UInt32 = 0x2  // FIB_RULE_INVERT (linux/fib_rules.h)
  static let ruleActionToTable: UInt8 = 1  // FR_ACT_TO_TBL
  static let rulePriority: UInt16 = 6  // FRA_PRIORITY
  static let ruleFwmark: UInt16 = 10  // FRA_FWMARK
  static let ruleSuppressPrefixLength: UInt16 = 14  // FRA_SUPPRESS_PREFIXLEN
  static let ruleTable: UInt16 = 15  // FRA_TABLE
  static let ruleFwmask: UInt16 = 16  // FRA_FWMASK
}

/// Rounds up to the 4-byte alignment of messages and attributes (NLMSG_ALIGN, RTA_ALIGN, NLA_ALIGN).
@inline(__always) func netlinkAlign(_ n: Int) -> Int { (n + 3) & ~3 }

/// One request being built: `nlmsghdr`, a fixed family header, then attributes.
///
/// ```
/// +--------------------------+--------------------+--------------+----------------+---
/// | nlmsghdr: len type flags | rtmsg / ifaddrmsg  | rtattr: len  | value, padded  | ...
/// |          seq  pid (16 B) | / ... (fixed size) |  type (4 B)  | to 4 bytes     |
/// +--------------------------+--------------------+--------------+----------------+---
/// ```
/// Integers are in host order (netlink is a local protocol); addresses in network order.
struct NetlinkRequest {
  private(set) var bytes: [UInt8]

  init(type: UInt16, flags: UInt16) {
    bytes = [UInt8](repeating: 0, count: NLM.headerSize)
    put(type, at: 4)
    put(flags, at: 6)
  }

  /// Appends an integer in host byte order.
  mutating func append<T: FixedWidthInteger>(_ value: T) {
    // Little-endian bytes of `value.littleEndian` are the host-order bytes on either kind of host.
    let v = value.littleEndian
    for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
  }

  /// Appends one attribute (`struct rtattr` / `struct nlattr`) and pads it to 4 bytes.
  mutating func attribute(_ type: UInt16, _ payload: [UInt8]) {
    append(UInt16(4 + payload.count))
    append(type)
    bytes += payload
    bytes += [UInt8](repeating: 0, count: netlinkAlign(payload.count) - payload.count)
  }

  /// Appends a `u32` attribute.
  mutating func attribute(_ type: UInt16, u32 value: UInt32) {
    append(UInt16(8))
    append(type)
    append(value)
  }

  /// The finished message: `flags` added, length and sequence number filled in.
  func encoded(sequence: UInt32, flags: UInt16) -> [UInt8] {
    var r = self
    r.put(UInt32(bytes.count), at: 0)
    r.put((netlinkLoad(UInt16.self, bytes[...], at: 6) ?? 0) | flags, at: 6)
    r.put(sequence, at: 8)
    return r.bytes
  }

  private mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
    let v = value.littleEndian
    for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
  }
}

/// Loads a host-order integer from `bytes` at `offset` (relative to its start), or nil past the end.
func netlinkLoad<T: FixedWidthInteger>(_: T.Type, _ bytes: ArraySlice<UInt8>, at offset: Int) -> T? {
  let size = MemoryLayout<T>.size
  guard offset >= 0, offset + size <= bytes.count else { return nil }
  var v: T = 0
  for i in 0..<size { v |= T(bytes[bytes.startIndex + offset + i]) << (8 * i) }
  return T(littleEndian: v)
}

/// One message of a reply (a datagram can hold several).
struct NetlinkMessage {
  var type: UInt16
  var flags: UInt16
  var sequence: UInt32
  /// The bytes after `nlmsghdr`.
  var payload: ArraySlice<UInt8>

  /// Splits a datagram into messages; a malformed tail is dropped.
  static func split(_ datagram: [UInt8]) -> [NetlinkMessage] {
    var out: [NetlinkMessage] = []
    var offset = 0
    let all = datagram[...]
    while let length = netlinkLoad(UInt32.self, all, at: offset).map(Int.init), length >= NLM.headerSize,
      offset + length <= datagram.count
    {
      out.append(
        NetlinkMessage(
          type: netlinkLoad(UInt16.self, all, at: offset + 4) ?? 0,
          flags: netlinkLoad(UInt16.self, all, at: offset + 6) ?? 0,
          sequence: netlinkLoad(UInt32.self, all, at: offset + 8) ?? 0,
          payload: datagram[(offset + NLM.headerSize)..<(offset + length)]))
      offset += netlinkAlign(length)
    }
    return out
  }

  /// For NLMSG_ERROR (and NLMSG_DONE): the errno (positive; 0 is an ack) and the kernel's
  /// extended-ack message if it sent one.
  var errorCode: (errno: Int32, message: String?) {
    let code = -(netlinkLoad(Int32.self, payload, at: 0) ?? 0)
    guard type == NLM.error, flags & NLM.ackTLVs != 0 else { return (code, nil) }
    // struct nlmsgerr: int error; struct nlmsghdr msg; then our request's payload unless
    // NLM_F_CAPPED; then the TLVs (linux/netlink.h).
    var offset = 4 + NLM.headerSize
    if flags & NLM.capped == 0, let echoed = netlinkLoad(UInt32.self, payload, at: 4) {
      offset = 4 + netlinkAlign(Int(echoed))
    }
    let tlvs = NetlinkAttributes(payload.dropFirst(offset))
    guard let text = tlvs[NLM.errorAttributeMessage] else { return (code, nil) }
    return (code, String(decoding: text.prefix { $0 != 0 }, as: UTF8.self))
  }
}

/// The attributes after a fixed header, by type (the last one of a type wins).
struct NetlinkAttributes {
  private var values: [UInt16: ArraySlice<UInt8>] = [:]

  init(_ bytes: ArraySlice<UInt8>) {
    var offset = 0
    while let length = netlinkLoad(UInt16.self, bytes, at: offset).map(Int.init), length >= 4,
      offset + length <= bytes.count, let type = netlinkLoad(UInt16.self, bytes, at: offset + 2)
    {
      let start = bytes.startIndex + offset
      // The top two bits are NLA_F_NESTED and NLA_F_NET_BYTEORDER (NLA_TYPE_MASK).
      values[type & 0x3FFF] = bytes[(start + 4)..<(start + length)]
      offset += netlinkAlign(length)
    }
  }

  subscript(type: UInt16) -> ArraySlice<UInt8>? { values[type] }

  func u32(_ type: UInt16) -> UInt32? { values[type].flatMap { netlinkLoad(UInt32.self, $0, at: 0) } }
}

extension IPAddress {
  /// An address from 4 or 16 network-order bytes.
  init?(networkBytes b: ArraySlice<UInt8>) {
    func be64(_ from: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(b[b.startIndex + from + $1]) } }
    switch b.count {
    case 4: self = .v4((0..<4).reduce(0) { $0 << 8 | UInt32(b[b.startIndex + $1]) })
    case 16: self = .v6(be64(0), be64(8))
    default: return nil
    }
  }

  /// The all-zero address of the same family as `ipv6`.
  static func zero(ipv6: Bool) -> IPAddress { ipv6 ? .v6(0, 0) : .v4(0) }
}

/// Address family numbers as the one-byte fields of rtmsg and friends want them.
@inline(__always) func netlinkFamily(ipv6: Bool) -> UInt8 { ipv6 ? 10 : 2 }  // AF_INET6, AF_INET (bits/socket.h)

extension NetlinkRequest {
  /// RTM_NEWLINK on an existing link: `struct ifinfomsg` (16 bytes) and IFLA_MTU.
  static func link(index: Int32, up: Bool, mtu: Int?) -> NetlinkRequest {
    var r = NetlinkRequest(type: NLM.newLink, flags: 0)
    r.append(UInt8(0))  // ifi_family AF_UNSPEC
    r.append(UInt8(0))  // pad
    r.append(UInt16(0))  // ifi_type
    r.append(index)  // ifi_index
    r.append(UInt32(up ? 0x1 : 0))  // ifi_flags: IFF_UP (linux/if.h)
    r.append(UInt32(0x1))  // ifi_change: only IFF_UP is being changed
    if let mtu { r.attribute(RT.linkMTU, u32: UInt32(truncatingIfNeeded: mtu)) }
    return r
  }

  /// RTM_NEWADDR / RTM_DELADDR: `struct ifaddrmsg` (8 bytes), IFA_LOCAL, IFA_ADDRESS, IFA_FLAGS.
  static func address(_ type: UInt16, flags: UInt16, _ prefix: Prefix, index: Int32) -> NetlinkRequest {
    let v6 = prefix.address.isV6
    var r = NetlinkRequest(type: type, flags: flags)
    r.append(netlinkFamily(ipv6: v6))  // ifa_family
    r.append(UInt8(truncatingIfNeeded: prefix.length))  // ifa_prefixlen
    // IPv6: no duplicate address detection, so the address is usable at once, not "tentative".
    r.append(v6 ? RT.addressNoDAD : 0)  // ifa_flags
    r.append(UInt8(0))  // ifa_scope: universe
    r.append(UInt32(bitPattern: index))  // ifa_index
    // As iproute2 does without a peer: IFA_LOCAL is our address, IFA_ADDRESS the same.
    r.attribute(RT.addressLocal, prefix.address.bytes)
    r.attribute(RT.addressAddress, prefix.address.bytes)
    if v6 { r.attribute(RT.addressFlags, u32: UInt32(RT.addressNoDAD)) }
    return r
  }

  /// RTM_NEWROUTE / RTM_DELROUTE for a directly connected prefix: `struct rtmsg` (12 bytes),
  /// RTA_DST, RTA_OIF and, for table ids above 255, RTA_TABLE.
  static func route(_ type: UInt16, flags: UInt16, _ prefix: Prefix, index: Int32, table: UInt32) -> NetlinkRequest {
    let adding = type == NLM.newRoute
    var r = NetlinkRequest(type: type, flags: flags)
    r.append(netlinkFamily(ipv6: prefix.address.isV6))  // rtm_family
    r.append(UInt8(truncatingIfNeeded: prefix.length))  // rtm_dst_len
    r.append(UInt8(0))  // rtm_src_len
    r.append(UInt8(0))  // rtm_tos
    r.append(table < 256 ? UInt8(table) : RT.tableUnspec)  // rtm_table
    r.append(adding ? RT.protocolStatic : 0)  // rtm_protocol (0 matches any when deleting)
    r.append(adding ? RT.scopeLink : RT.scopeNowhere)  // rtm_scope
    r.append(RT.typeUnicast)  // rtm_type
    r.append(UInt32(0))  // rtm_flags
    if prefix.length > 0 { r.attribute(RT.attributeDestination, prefix.address.bytes) }
    r.attribute(RT.attributeOutputInterface, u32: UInt32(bitPattern: index))
    if table > 255 { r.attribute(RT.attributeTable, u32: table) }
    return r
  }

  /// RTM_NEWRULE / RTM_DELRULE: `struct fib_rule_hdr` (12 bytes) and the FRA_* attributes.
  static func rule(_ type: UInt16, flags: UInt16, _ rule: PolicyRule) -> NetlinkRequest {
    var r = NetlinkRequest(type: type, flags: flags)
    r.append(netlinkFamily(ipv6: rule.ipv6))  // family
    r.append(UInt8(0))  // dst_len
    r.append(UInt8(0))  // src_len
    r.append(UInt8(0))  // tos
    r.append(rule.table < 256 ? UInt8(rule.table) : RT.tableUnspec)  // table
    r.append(UInt8(0))  // res1
    r.append(UInt8(0))  // res2
    r.append(RT.ruleActionToTable)  // action
    r.append(rule.invertFwmark ? RT.ruleInvert : 0)  // flags
    r.attribute(RT.rulePriority, u32: rule.priority)
    if rule.table > 255 { r.attribute(RT.ruleTable, u32: rule.table) }
    if let mark = rule.fwmark {
      r.attribute(RT.ruleFwmark, u32: mark)
      r.attribute(RT.ruleFwmask, u32: 0xFFFF_FFFF)
    }
    if let length = rule.suppressPrefixLength { r.attribute(RT.ruleSuppressPrefixLength, u32: length) }
    return r
  }

  /// A dump request (RTM_GETROUTE, RTM_GETRULE): a zeroed 12-byte header carrying only the family.
  static func dump(_ type: UInt16, ipv6: Bool) -> NetlinkRequest {
    var r = NetlinkRequest(type: type, flags: NLM.dump)
    r.append(netlinkFamily(ipv6: ipv6))
    for _ in 1..<12 { r.append(UInt8(0)) }
    return r
  }
}

extension PolicyRule {
  /// Decodes one RTM_NEWRULE message of a dump; nil for other actions (goto, nop, blackhole...).
  init?(_ message: NetlinkMessage) {
    let p = message.payload
    guard let family = netlinkLoad(UInt8.self, p, at: 0), let table = netlinkLoad(UInt8.self, p, at: 4),
      netlinkLoad(UInt8.self, p, at: 7) == RT.ruleActionToTable, let flags = netlinkLoad(UInt32.self, p, at: 8)
    else { return nil }
    let a = NetlinkAttributes(p.dropFirst(12))
    let mark = a.u32(RT.ruleFwmark) ?? 0
    // The kernel reports FRA_SUPPRESS_PREFIXLEN always; -1 (all ones) means "not set".
    let suppress = a.u32(RT.ruleSuppressPrefixLength).flatMap { $0 == 0xFFFF_FFFF ? nil : $0 }
    self.init(
      ipv6: family == netlinkFamily(ipv6: true), priority: a.u32(RT.rulePriority) ?? 0,
      table: a.u32(RT.ruleTable) ?? UInt32(table), fwmark: mark == 0 ? nil : mark,
      invertFwmark: flags & RT.ruleInvert != 0, suppressPrefixLength: suppress)
  }
}
