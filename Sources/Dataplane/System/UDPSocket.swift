// SPDX-License-Identifier: Apache-2.0
// One UDP socket per `listen` entry: bound, non-blocking, reporting each datagram's destination
// address (IP_PKTINFO / IPV6_RECVPKTINFO) so replies leave from the address the peer used.
import CLinux
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// A listening UDP socket. Owns its descriptor (closed in deinit).
public final class UDPSocket {
  private let owned: OwnedFD
  public var fd: Int32 { owned.raw }
  /// The endpoint it is bound to (the address may be a wildcard).
  public let local: Endpoint
  /// The message arrays of the batch calls (UDPSocket+Batch.swift), made on first use.
  var batchScratch: MMsgScratch?

  /// Opens and binds a socket for `listen`.
  /// - Parameters:
  ///   - listen: address and port; IPv6 sockets are IPv6-only.
  ///   - mark: SO_MARK for every packet it sends, so policy routing keeps espd's own ESP out of its
  ///     TUN (INTERFACE.md "Routes").
  ///   - receiveBuffer: receive buffer size to ask for (SO_RCVBUFFORCE, else SO_RCVBUF).
  ///   - sendBuffer: send buffer size to ask for (SO_SNDBUFFORCE, else SO_SNDBUF).
  ///   - reusePort: SO_REUSEPORT, so that each worker binds a socket of its own to the same endpoint
  ///     (the kernel spreads datagrams over them by a hash of the 4-tuple: one peer, one socket).
  public init(
    listen: Endpoint, mark: UInt32?, receiveBuffer: Int = Config.defaultUDPBuffer,
    sendBuffer: Int = Config.defaultUDPBuffer, reusePort: Bool = false
  )
    throws(SystemError)
  {
    let v6 = listen.address.isV6
    let socket = try Sys.socket(
      v6 ? AF_INET6 : AF_INET,
      Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
      0, "cannot create a UDP socket")
    let fd = socket.raw
    self.local = listen
    do {  // on a throw, `socket` closes on the way out
      try Sys.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "cannot set SO_REUSEADDR")
      if reusePort { try Sys.setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "cannot set SO_REUSEPORT") }
      if v6 {
        try Sys.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1, "cannot set IPV6_V6ONLY")
        try Sys.setOption(fd, Int32(IPPROTO_IPV6), IPV6_RECVPKTINFO, 1, "cannot set IPV6_RECVPKTINFO")
        // Let the kernel fragment ESP datagrams larger than the path MTU rather than refuse them.
        try Sys.setOption(
          fd, Int32(IPPROTO_IPV6), IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DONT, "cannot set IPV6_MTU_DISCOVER")
      } else {
        try Sys.setOption(fd, Int32(IPPROTO_IP), IP_PKTINFO, 1, "cannot set IP_PKTINFO")
        try Sys.setOption(fd, Int32(IPPROTO_IP), IP_MTU_DISCOVER, IP_PMTUDISC_DONT, "cannot set IP_MTU_DISCOVER")
      }
      // Large buffers ride out bursts (``buffers`` reports what the kernel granted).
      Sys.setBufferSize(fd, force: SO_RCVBUFFORCE, plain: SO_RCVBUF, receiveBuffer)
      Sys.setBufferSize(fd, force: SO_SNDBUFFORCE, plain: SO_SNDBUF, sendBuffer)
      if let mark { try Sys.setOption(fd, SOL_SOCKET, SO_MARK, Int32(bitPattern: mark), "cannot set SO_MARK") }
      var storage = SocketAddressStorage()
      let length = withUnsafeMutableBytes(of: &storage) { SocketAddress.write(listen, to: $0.baseAddress!) }
      try Sys.bind(fd, &storage, length, "cannot listen on udp \(listen)")
    }
    owned = socket
  }

  /// The receive and send buffer sizes the kernel granted (it doubles what was asked, for its
  /// bookkeeping; without CAP_NET_ADMIN the sysctl maxima cap them).
  public var buffers: (receive: Int, send: Int) {
    func get(_ option: Int32) -> Int { Int(Sys.option(fd, SOL_SOCKET, option, initial: Int32(0)) ?? 0) }
    return (get(SO_RCVBUF), get(SO_SNDBUF))
  }

  /// Turns UDP_GRO on (Linux 5.0+): several datagrams of one flow may arrive as one receive.
  /// - Returns: whether the kernel took it. Turning it off needs no check: a kernel that refuses
  ///   UDP_GRO never turned it on.
  @discardableResult
  public func enableGRO(_ on: Bool = true) -> Bool {
    (try? Sys.setOption(fd, SocketAddress.solUDP, SocketAddress.udpGRO, on ? 1 : 0, "cannot set UDP_GRO")) != nil
  }

  /// Whether the kernel takes UDP_SEGMENT on this socket (UDP GSO, Linux 4.18+).
  public var supportsGSO: Bool {
    Sys.option(fd, SocketAddress.solUDP, SocketAddress.udpSegment, initial: Int32(0)) != nil
  }

  /// Sends one datagram (control path: keepalives, IKE replies).
  /// - Returns: false if the socket buffer is full (the datagram is dropped).
  @discardableResult
  public func send(_ bytes: UnsafeRawBufferPointer, to remote: Endpoint, from source: IPAddress) throws(SystemError)
    -> Bool
  {
    var name = SocketAddressStorage()
    let nameLength = withUnsafeMutableBytes(of: &name) { SocketAddress.write(remote, to: $0.baseAddress!) }
    var control = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
    let controlLength = withUnsafeMutableBytes(of: &control) {
      SocketAddress.writePacketInfo(source: source, to: $0.baseAddress!)
    }
    var iov = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
    let r = withUnsafeMutablePointer(to: &name) { namePointer in
      withUnsafeMutablePointer(to: &control) { controlPointer in
        withUnsafeMutablePointer(to: &iov) { iovPointer in
          var m = msghdr()
          m.msg_name = UnsafeMutableRawPointer(namePointer)
          m.msg_namelen = nameLength
          m.msg_iov = iovPointer
          m.msg_iovlen = 1
          m.msg_control = controlLength > 0 ? UnsafeMutableRawPointer(controlPointer) : nil
          m.msg_controllen = controlLength
          return Sys.sendMessage(fd, &m, 0)
        }
      }
    }
    if r >= 0 { return true }
    if errno == EAGAIN || errno == ENOBUFS { return false }
    throw SystemError("cannot send to \(remote)", errno: errno)
  }

  /// Receives one datagram (control path: the `ike.listen` sockets), without blocking.
  /// - Returns: its length, its source, and the local endpoint it was sent to (the address from
  ///   its pktinfo, the port this socket's); nil when none waits or its source is not IP.
  public func receive(into buffer: UnsafeMutableRawPointer, capacity: Int) -> (Int, Endpoint, Endpoint)? {
    var name = SocketAddressStorage()
    var control = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
    var iov = iovec(iov_base: buffer, iov_len: capacity)
    while true {
      let (n, controlLength) = withUnsafeMutablePointer(to: &name) { namePointer in
        withUnsafeMutablePointer(to: &control) { controlPointer in
          withUnsafeMutablePointer(to: &iov) { iovPointer in
            var m = msghdr()
            m.msg_name = UnsafeMutableRawPointer(namePointer)
            m.msg_namelen = socklen_t(MemoryLayout<SocketAddressStorage>.size)
            m.msg_iov = iovPointer
            m.msg_iovlen = 1
            m.msg_control = UnsafeMutableRawPointer(controlPointer)
            m.msg_controllen = 64
            let n = Sys.receiveMessage(fd, &m, Int32(MSG_DONTWAIT) | Int32(MSG_TRUNC))
            return (n, Int(m.msg_controllen))
          }
        }
      }
      if n < 0 { return nil }
      // A datagram larger than the buffer (MSG_TRUNC gives its real length) is no IKE we can punt.
      guard n <= capacity, let from = withUnsafeBytes(of: &name, { SocketAddress.read($0.baseAddress!) }) else {
        continue
      }
      let to = withUnsafeBytes(of: &control) {
        SocketAddress.packetInfoDestination(control: $0.baseAddress!, length: controlLength)
      }
      return (n, from, Endpoint(address: to ?? local.address, port: local.port))
    }
  }
}
