// SPDX-License-Identifier: Apache-2.0
// The TUN device: opened on /dev/net/tun (IFF_TUN | IFF_NO_PI), non-blocking, gone when closed.
import CLinux
import CURing

#if canImport(Glibc)
  import Glibc
#endif

/// A TUN device. Owns its descriptor; the kernel deletes the (non-persistent) device, with its
/// addresses and routes, when the last descriptor closes.
public final class TunDevice {
  /// The first queue's descriptor (the only one without IFF_MULTI_QUEUE).
  public var fd: Int32 { queues.first ?? -1 }
  /// One descriptor per queue (``attachQueue()``), borrowed from ``owned``.
  public private(set) var queues: [Int32] = []
  /// The queues' descriptors, closed with the device.
  private var owned: [SharedFD] = [] {
    didSet { queues = owned.map(\.raw) }
  }
  /// The interface name the kernel gave it.
  public let name: String
  /// Whether every read and write carries a ``VirtioNetHeader`` in front (IFF_VNET_HDR).
  public let vnetHeader: Bool
  /// The offloads the kernel accepted (``setOffloads(_:)``); 0: none.
  public private(set) var offloads: UInt32 = 0

  /// TUNSETOFFLOAD flags (linux/if_tun.h).
  public static let offloadChecksum: UInt32 = 0x01
  public static let offloadTSO4: UInt32 = 0x02
  public static let offloadTSO6: UInt32 = 0x04
  public static let offloadUSO4: UInt32 = 0x20
  public static let offloadUSO6: UInt32 = 0x40

  /// Creates (or attaches to) the TUN device `name`.
  /// - Parameters:
  ///   - multiQueue: open with IFF_MULTI_QUEUE, so more queues can be attached later.
  ///   - vnetHeader: open with IFF_VNET_HDR (needed for offloads).
  public init(name: String, multiQueue: Bool = false, vnetHeader: Bool = false) throws(SystemError) {
    self.vnetHeader = vnetHeader
    let (fd, given) = try TunDevice.open(name, multiQueue: multiQueue, vnetHeader: vnetHeader)
    owned = [fd]
    queues = [fd.raw]  // didSet does not run in init
    self.name = given
  }

  /// Opens /dev/net/tun and attaches it to the device `name` (creating it if need be).
  private static func open(_ name: String, multiQueue: Bool, vnetHeader: Bool) throws(SystemError) -> (
    SharedFD, String
  ) {
    let fd = try Sys.open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK, "cannot open /dev/net/tun")
    var ifr = ifreq()
    withUnsafeMutableBytes(of: &ifr.ifr_ifrn.ifrn_name) { b in
      for (i, c) in name.utf8.prefix(Int(IFNAMSIZ) - 1).enumerated() { b[i] = c }
    }
    ifr.ifr_ifru.ifru_flags = Int16(
      IFF_TUN | IFF_NO_PI | (multiQueue ? IFF_MULTI_QUEUE : 0) | (vnetHeader ? IFF_VNET_HDR : 0))
    guard Sys.ioctl(fd.raw, CLinux_TUNSETIFF(), &ifr) == 0 else {
      throw SystemError("cannot create TUN device \(name)", errno: errno)  // `fd` closes on the way out
    }
    return (
      SharedFD(fd),
      withUnsafeBytes(of: &ifr.ifr_ifrn.ifrn_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    )
  }

  /// Attaches one more queue (the device must be opened with `multiQueue`): the kernel spreads the packets it sends into
  /// the device over the queues by flow, and sends a flow's packets to the queue that last wrote
  /// one of that flow (tun's automatic steering).
  /// - Returns: the new queue's descriptor.
  public func attachQueue() throws(SystemError) -> Int32 {
    let (fd, _) = try TunDevice.open(name, multiQueue: true, vnetHeader: vnetHeader)
    owned.append(fd)
    return fd.raw
  }

  /// Closes every queue but the first (after a fallback to a single loop).
  public func detachExtraQueues() {
    owned = Array(owned.prefix(1))
  }

  /// Closes the device now: the kernel unregisters it (with its addresses and routes) before
  /// `close` returns, provided nothing else (a pending io_uring read) holds the file.
  public func close() { owned = [] }

  /// Asks for offloads (needs ``vnetHeader``): the first of `choices` the kernel accepts wins
  /// (newer flags first, e.g. with USO, then without).
  /// - Returns: the flags in force (0 when the kernel refused them all, or for 0 itself).
  @discardableResult
  public func setOffloads(_ choices: [UInt32]) -> UInt32 {
    for flags in choices
    where Sys.ioctl(fd, CLinux_TUNSETOFFLOAD(), UnsafeMutableRawPointer(bitPattern: UInt(flags))) == 0 {
      offloads = flags
      return flags
    }
    // Offloads off: a kernel that refuses even that never took any (the TUN predates offloads).
    _ = Sys.ioctl(fd, CLinux_TUNSETOFFLOAD(), nil)
    offloads = 0
    return 0
  }

  /// `csum tso4 tso6 uso4 uso6`, or `none`.
  public static func describeOffloads(_ flags: UInt32) -> String {
    let names: [(UInt32, String)] = [
      (offloadChecksum, "csum"), (offloadTSO4, "tso4"), (offloadTSO6, "tso6"), (offloadUSO4, "uso4"),
      (offloadUSO6, "uso6"),
    ]
    let on = names.filter { flags & $0.0 != 0 }.map(\.1)
    return on.isEmpty ? "none" : on.joined(separator: " ")
  }

  /// The interface index.
  public var index: Int32 { Int32(if_nametoindex(name)) }

  /// Turns IPv6 off on the device (for a TUN with no IPv6 address: otherwise the kernel's own router
  /// solicitations and MLD reports would reach the outbound path as unroutable packets).
  public func disableIPv6() {
    FileIO.write("1", to: "/proc/sys/net/ipv6/conf/\(name)/disable_ipv6")  // no IPv6 in this kernel: nothing to do
  }

  /// Sets the MTU and the transmit queue length and brings the link up, with the classic interface
  /// ioctls.
  public func configure(mtu: Int, txQueueLength: Int = 1000) throws(SystemError) {
    let socket = try Sys.socket(
      AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, "cannot create a control socket")
    var ifr = ifreq()
    withUnsafeMutableBytes(of: &ifr.ifr_ifrn.ifrn_name) { b in
      for (i, c) in name.utf8.prefix(Int(IFNAMSIZ) - 1).enumerated() { b[i] = c }
    }
    ifr.ifr_ifru.ifru_mtu = Int32(mtu)
    _ = try Sys.call("cannot set the MTU of \(name) to \(mtu)") { Sys.ioctl(socket.raw, UInt(SIOCSIFMTU), &ifr) }
    ifr.ifr_ifru.ifru_ivalue = Int32(txQueueLength)
    _ = try Sys.call("cannot set the txqueuelen of \(name) to \(txQueueLength)") {
      Sys.ioctl(socket.raw, UInt(SIOCSIFTXQLEN), &ifr)
    }
    _ = try Sys.call("cannot read the flags of \(name)") { Sys.ioctl(socket.raw, UInt(SIOCGIFFLAGS), &ifr) }
    ifr.ifr_ifru.ifru_flags |= Int16(IFF_UP | IFF_RUNNING)
    _ = try Sys.call("cannot bring \(name) up") { Sys.ioctl(socket.raw, UInt(SIOCSIFFLAGS), &ifr) }
  }
}
