// SPDX-License-Identifier: Apache-2.0
// Endpoint <-> sockaddr_in / sockaddr_in6, and IP_PKTINFO / IPV6_PKTINFO control messages.
import CLinux
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// A sockaddr big enough for IPv4 and IPv6 (sockaddr_storage is larger than needed).
public typealias SocketAddressStorage = sockaddr_in6

enum SocketAddress {
  /// Writes `endpoint` as a sockaddr at `p` (room for sockaddr_in6).
  /// - Returns: the length to pass to the kernel.
  static func write(_ endpoint: Endpoint, to p: UnsafeMutableRawPointer) -> socklen_t {
    switch endpoint.address {
    case .v4(let a):
      var sin = sockaddr_in()
      sin.sin_family = sa_family_t(AF_INET)
      sin.sin_port = endpoint.port.bigEndian
      sin.sin_addr.s_addr = a.bigEndian
      p.storeBytes(of: sin, as: sockaddr_in.self)
      return socklen_t(MemoryLayout<sockaddr_in>.size)
    case .v6(let h, let l):
      var sin6 = sockaddr_in6()
      sin6.sin6_family = sa_family_t(AF_INET6)
      sin6.sin6_port = endpoint.port.bigEndian
      withUnsafeMutableBytes(of: &sin6.sin6_addr) { b in
        b.storeBytes(of: h.bigEndian, toByteOffset: 0, as: UInt64.self)
        b.storeBytes(of: l.bigEndian, toByteOffset: 8, as: UInt64.self)
      }
      p.storeBytes(of: sin6, as: sockaddr_in6.self)
      return socklen_t(MemoryLayout<sockaddr_in6>.size)
    }
  }

  /// Reads a sockaddr_in or sockaddr_in6 at `p`.
  /// - Returns: nil for another family. An IPv4-mapped IPv6 address is returned as IPv4.
  static func read(_ p: UnsafeRawPointer) -> Endpoint? {
    switch Int32(p.load(as: sa_family_t.self)) {
    case AF_INET:
      let sin = p.loadUnaligned(as: sockaddr_in.self)
      return Endpoint(address: .v4(UInt32(bigEndian: sin.sin_addr.s_addr)), port: UInt16(bigEndian: sin.sin_port))
    case AF_INET6:
      let sin6 = p.loadUnaligned(as: sockaddr_in6.self)
      let (h, l) = withUnsafeBytes(of: sin6.sin6_addr) {
        (
          UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)),
          UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        )
      }
      let port = UInt16(bigEndian: sin6.sin6_port)
      if h == 0 && l >> 32 == 0xFFFF { return Endpoint(address: .v4(UInt32(truncatingIfNeeded: l)), port: port) }
      return Endpoint(address: .v6(h, l), port: port)
    default:
      return nil
    }
  }

  /// Control-message space reserved per datagram for one pktinfo (the larger, IPv6's).
  static let controlSpace = 64

  /// The first control message of `level` and `type` in a received datagram's control data:
  /// its data and length, or nil (also for a malformed list).
  static func controlMessage(_ level: Int32, _ type: Int32, control: UnsafeRawPointer, length: Int) -> (
    UnsafeRawPointer, Int
  )? {
    var offset = 0
    let headerSize = MemoryLayout<cmsghdr>.size
    while offset + headerSize <= length {
      let c = control.loadUnaligned(fromByteOffset: offset, as: cmsghdr.self)
      let cmsgLength = Int(c.cmsg_len)
      guard cmsgLength >= align(headerSize), offset + cmsgLength <= length else { return nil }
      if c.cmsg_level == level && c.cmsg_type == type {
        return (control + offset + align(headerSize), cmsgLength - align(headerSize))
      }
      offset += align(cmsgLength)
    }
    return nil
  }

  /// Finds the destination address of a received datagram in its IP_PKTINFO / IPV6_PKTINFO.
  static func packetInfoDestination(control: UnsafeRawPointer, length: Int) -> IPAddress? {
    if let (data, n) = controlMessage(Int32(IPPROTO_IP), Int32(IP_PKTINFO), control: control, length: length),
      n >= MemoryLayout<in_pktinfo>.size
    {
      return .v4(UInt32(bigEndian: data.loadUnaligned(as: in_pktinfo.self).ipi_addr.s_addr))
    }
    if let (data, n) = controlMessage(Int32(IPPROTO_IPV6), Int32(IPV6_PKTINFO), control: control, length: length),
      n >= MemoryLayout<CLinux_in6_pktinfo>.size
    {
      let info = data.loadUnaligned(as: CLinux_in6_pktinfo.self)
      return withUnsafeBytes(of: info.ipi6_addr) {
        .v6(
          UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)),
          UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
      }
    }
    return nil
  }

  /// SOL_UDP and its UDP_SEGMENT (GSO) and UDP_GRO options (linux/udp.h).
  static let solUDP: Int32 = 17
  static let udpSegment: Int32 = 103
  static let udpGRO: Int32 = 104

  /// The segment size of a coalesced receive (the UDP_GRO control message), or nil.
  static func groSegmentSize(control: UnsafeRawPointer, length: Int) -> Int? {
    guard let (data, n) = controlMessage(solUDP, udpGRO, control: control, length: length), n >= 2 else { return nil }
    // The kernel writes an int (put_cmsg of gso_size).
    return n >= 4 ? Int(data.loadUnaligned(as: Int32.self)) : Int(data.loadUnaligned(as: UInt16.self))
  }

  /// Writes a UDP_SEGMENT control message (the GSO segment size) at `control`.
  /// - Returns: the bytes written (aligned).
  static func writeSegmentSize(_ size: UInt16, to control: UnsafeMutableRawPointer) -> Int {
    let headerSize = align(MemoryLayout<cmsghdr>.size)
    var c = cmsghdr()
    c.cmsg_level = solUDP
    c.cmsg_type = udpSegment
    c.cmsg_len = headerSize + 2
    control.storeBytes(of: c, as: cmsghdr.self)
    (control + headerSize).storeBytes(of: size, as: UInt16.self)
    return align(headerSize + 2)
  }

  /// Writes a pktinfo control message that makes the kernel send from `source`.
  /// - Returns: the control length (0 when `source` is a wildcard: let the kernel choose).
  static func writePacketInfo(source: IPAddress, to control: UnsafeMutableRawPointer) -> Int {
    let headerSize = align(MemoryLayout<cmsghdr>.size)
    switch source {
    case .v4(let a):
      if a == 0 { return 0 }
      var c = cmsghdr()
      c.cmsg_level = Int32(IPPROTO_IP)
      c.cmsg_type = Int32(IP_PKTINFO)
      c.cmsg_len = headerSize + MemoryLayout<in_pktinfo>.size
      control.storeBytes(of: c, as: cmsghdr.self)
      var info = in_pktinfo()
      info.ipi_spec_dst.s_addr = a.bigEndian
      (control + headerSize).storeBytes(of: info, as: in_pktinfo.self)
      return align(Int(c.cmsg_len))
    case .v6(let h, let l):
      if h == 0 && l == 0 { return 0 }
      var c = cmsghdr()
      c.cmsg_level = Int32(IPPROTO_IPV6)
      c.cmsg_type = Int32(IPV6_PKTINFO)
      c.cmsg_len = headerSize + MemoryLayout<CLinux_in6_pktinfo>.size
      control.storeBytes(of: c, as: cmsghdr.self)
      var info = CLinux_in6_pktinfo()
      withUnsafeMutableBytes(of: &info.ipi6_addr) { b in
        b.storeBytes(of: h.bigEndian, toByteOffset: 0, as: UInt64.self)
        b.storeBytes(of: l.bigEndian, toByteOffset: 8, as: UInt64.self)
      }
      (control + headerSize).storeBytes(of: info, as: CLinux_in6_pktinfo.self)
      return align(Int(c.cmsg_len))
    }
  }

  /// CMSG_ALIGN: control messages are aligned to `size_t`.
  @inline(__always)
  static func align(_ n: Int) -> Int { (n + MemoryLayout<Int>.size - 1) & ~(MemoryLayout<Int>.size - 1) }
}
