// SPDX-License-Identifier: Apache-2.0
// The TUN device: opened on /dev/net/tun (IFF_TUN | IFF_NO_PI), non-blocking, gone when closed.
import CIO

#if canImport(Glibc)
  import Glibc
#endif

/// A TUN device. Owns its descriptor; the kernel deletes the (non-persistent) device, with its
/// addresses and routes, when the last descriptor closes.
public final class TunDevice {
  public private(set) var fd: Int32
  /// The interface name the kernel gave it.
  public let name: String

  /// Creates (or attaches to) the TUN device `name`.
  /// - Parameter multiQueue: open with IFF_MULTI_QUEUE, so more queues can be attached later.
  public init(name: String, multiQueue: Bool = false) throws(SystemError) {
    let fd = try Sys.call("cannot open /dev/net/tun") { open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK) }
    var ifr = ifreq()
    withUnsafeMutableBytes(of: &ifr.ifr_ifrn.ifrn_name) { b in
      for (i, c) in name.utf8.prefix(Int(IFNAMSIZ) - 1).enumerated() { b[i] = c }
    }
    ifr.ifr_ifru.ifru_flags = Int16(IFF_TUN | IFF_NO_PI | (multiQueue ? IFF_MULTI_QUEUE : 0))
    guard CIO_ioctl(fd, CIO_TUNSETIFF(), &ifr) == 0 else {
      let e = errno
      Glibc.close(fd)
      throw SystemError("cannot create TUN device \(name)", errno: e)
    }
    self.fd = fd
    self.name = withUnsafeBytes(of: &ifr.ifr_ifrn.ifrn_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
  }

  deinit { close() }

  /// Closes the device now: the kernel unregisters it (with its addresses and routes) before
  /// `close` returns, provided nothing else (a pending io_uring read) holds the file.
  public func close() {
    guard fd >= 0 else { return }
    _ = Glibc.close(fd)
    fd = -1
  }

  /// The interface index.
  public var index: Int32 { Int32(if_nametoindex(name)) }

  /// Turns IPv6 off on the device (for a TUN with no IPv6 address: otherwise the kernel's own router
  /// solicitations and MLD reports would reach the outbound path as unroutable packets).
  public func disableIPv6() {
    FileIO.write("1", to: "/proc/sys/net/ipv6/conf/\(name)/disable_ipv6")  // no IPv6 in this kernel: nothing to do
  }

  /// Sets the MTU and brings the link up, with the classic interface ioctls.
  public func configure(mtu: Int) throws(SystemError) {
    let s = try Sys.call("cannot create a control socket") {
      socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }
    defer { Glibc.close(s) }
    var ifr = ifreq()
    withUnsafeMutableBytes(of: &ifr.ifr_ifrn.ifrn_name) { b in
      for (i, c) in name.utf8.prefix(Int(IFNAMSIZ) - 1).enumerated() { b[i] = c }
    }
    ifr.ifr_ifru.ifru_mtu = Int32(mtu)
    _ = try Sys.call("cannot set the MTU of \(name) to \(mtu)") { CIO_ioctl(s, UInt(SIOCSIFMTU), &ifr) }
    _ = try Sys.call("cannot read the flags of \(name)") { CIO_ioctl(s, UInt(SIOCGIFFLAGS), &ifr) }
    ifr.ifr_ifru.ifru_flags |= Int16(IFF_UP | IFF_RUNNING)
    _ = try Sys.call("cannot bring \(name) up") { CIO_ioctl(s, UInt(SIOCSIFFLAGS), &ifr) }
  }
}
