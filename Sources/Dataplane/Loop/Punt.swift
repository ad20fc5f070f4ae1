// SPDX-License-Identifier: Apache-2.0
// The IKE punt channel: IKE datagrams (marker stripped) go to the IKE daemon behind a 40-byte
// header, and its replies come back the same way to be sent with the marker (INTERFACE.md ike.punt).
import CIO
import ESP
import UDPEncap

#if canImport(Glibc)
  import Glibc
#endif

/// A datagram socket connected to the `ike.punt` target (UDP or Unix). Owns its descriptor.
public final class PuntChannel {
  public let fd: Int32
  public let target: PuntTarget
  /// Datagrams that could not be handed over (the daemon is not reading and the queue, bounded by
  /// `limits.ike_queue_bytes`, is full): counted, dropped.
  public private(set) var dropped: UInt64 = 0
  /// Datagrams over `limits.ike_per_second` (all sources): counted, dropped before the queue.
  public var rateLimited: UInt64 { limiter.globalLimited }
  /// Datagrams over `limits.ike_per_source_per_second` from their source address: counted, dropped.
  public var sourceLimited: UInt64 { limiter.sourceLimited }
  /// The send buffer the kernel granted (it doubles what is asked, for its bookkeeping).
  public private(set) var queueBytes = 0
  public private(set) var punted: UInt64 = 0
  public private(set) var replies: UInt64 = 0
  let buffer = UnsafeMutableRawPointer.allocate(byteCount: 65536 + PuntHeader.size, alignment: 16)
  /// The rate limits, per source address and in all.
  var limiter: IKERateLimiter

  /// Connects to the daemon.
  /// - Parameters:
  ///   - target: where the daemon listens.
  ///   - queueBytes: the socket's send buffer: what may wait for the daemon (the kernel doubles it
  ///     for its bookkeeping, as socket(7) says).
  ///   - perSecond: datagrams punted per second at most, with one second of burst.
  ///   - perSource: datagrams punted per second at most from one source address.
  public init(
    target: PuntTarget, queueBytes: Int = Limits().ikeQueueBytes, perSecond: Int = Limits().ikePerSecond,
    perSource: Int = Limits().ikePerSourcePerSecond
  ) throws(SystemError) {
    self.target = target
    limiter = IKERateLimiter(perSecond: perSecond, perSource: perSource)
    let sockType = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
    switch target {
    case .udp(let e):
      let fd = try Sys.call("cannot create the IKE punt socket") {
        socket(e.address.isV6 ? AF_INET6 : AF_INET, sockType, 0)
      }
      var storage = SocketAddressStorage()
      let length = withUnsafeMutableBytes(of: &storage) { SocketAddress.write(e, to: $0.baseAddress!) }
      let r = withUnsafePointer(to: &storage) { CIO_connect(fd, $0, length) }
      guard r == 0 else {
        let err = errno
        close(fd)
        throw SystemError("cannot connect the IKE punt socket to udp \(e)", errno: err)
      }
      self.fd = fd
      self.queueBytes = PuntChannel.bound(fd, queueBytes)
    case .unix(let path):
      let fd = try Sys.call("cannot create the IKE punt socket") { socket(AF_UNIX, sockType, 0) }
      // An abstract address of the kernel's choosing (autobind: the family alone), so the daemon
      // can reply to us and no two channels, or two espd, ever want the same name.
      var local = sockaddr_un()
      local.sun_family = sa_family_t(AF_UNIX)
      let localLength = socklen_t(MemoryLayout<sa_family_t>.size)
      var remote = sockaddr_un()
      remote.sun_family = sa_family_t(AF_UNIX)
      withUnsafeMutableBytes(of: &remote.sun_path) { b in
        for (i, c) in path.utf8.prefix(b.count - 1).enumerated() { b[i] = c }
      }
      let ok =
        withUnsafePointer(to: &local) { CIO_bind(fd, $0, localLength) } == 0
        && withUnsafePointer(to: &remote) { CIO_connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } == 0
      guard ok else {
        let err = errno
        close(fd)
        throw SystemError("cannot connect the IKE punt socket to unix \(path)", errno: err)
      }
      self.fd = fd
      self.queueBytes = PuntChannel.bound(fd, queueBytes)
    }
  }

  /// Sets the send buffer that bounds the queue: SO_SNDBUFFORCE (CAP_NET_ADMIN, which `espd run`
  /// has) so that net.core.wmem_max does not cut it down, else SO_SNDBUF.
  /// - Returns: the size the kernel reports (twice the request, socket(7)).
  static func bound(_ fd: Int32, _ bytes: Int) -> Int {
    var v = Int32(clamping: bytes)
    let size = socklen_t(MemoryLayout<Int32>.size)
    if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, size) != 0 {
      _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, size)
    }
    var got: Int32 = 0
    var length = size
    _ = getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &length)
    return Int(got)
  }

  deinit {
    close(fd)
    buffer.deallocate()
  }

  /// Hands one IKE message (marker already stripped) to the daemon.
  public func punt(_ ike: UnsafeRawBufferPointer, from remote: Endpoint, to local: Endpoint) {
    guard ike.count <= 65536, let base = ike.baseAddress else { return }
    guard limiter.admit(remote.address, now: LoopCore.now()) else { return }
    PuntChannel.header(source: remote, destination: local).write(to: buffer)
    (buffer + PuntHeader.size).copyMemory(from: base, byteCount: ike.count)
    if send(fd, buffer, PuntHeader.size + ike.count, Int32(MSG_DONTWAIT)) < 0 { dropped &+= 1 } else { punted &+= 1 }
  }

  /// Reads one reply from the daemon.
  /// - Returns: the header and the IKE message, valid until the next call; nil when none is waiting
  ///   (or the reply had no valid header: counted in `dropped`).
  public func receive() -> (PuntHeader, UnsafeRawBufferPointer)? {
    while true {
      let n = recv(fd, buffer, 65536 + PuntHeader.size, Int32(MSG_DONTWAIT))
      if n < 0 { return nil }
      guard let h = PuntHeader.parse(UnsafeRawBufferPointer(start: buffer, count: n)) else {
        dropped &+= 1
        continue
      }
      replies &+= 1
      return (h, UnsafeRawBufferPointer(start: buffer + PuntHeader.size, count: n - PuntHeader.size))
    }
  }

  static func header(source: Endpoint, destination: Endpoint) -> PuntHeader {
    func words(_ a: IPAddress) -> (UInt64, UInt64) {
      switch a {
      case .v4(let v): (UInt64(v) << 32, 0)
      case .v6(let h, let l): (h, l)
      }
    }
    return PuntHeader(
      family: source.address.isV6 ? 6 : 4, sourceAddress: words(source.address), sourcePort: source.port,
      destinationAddress: words(destination.address), destinationPort: destination.port)
  }

  /// The endpoints a header names (source, destination).
  static func endpoints(_ h: PuntHeader) -> (Endpoint, Endpoint) {
    func address(_ w: (UInt64, UInt64)) -> IPAddress {
      h.family == 4 ? .v4(UInt32(truncatingIfNeeded: w.0 >> 32)) : .v6(w.0, w.1)
    }
    return (
      Endpoint(address: address(h.sourceAddress), port: h.sourcePort),
      Endpoint(address: address(h.destinationAddress), port: h.destinationPort)
    )
  }
}
