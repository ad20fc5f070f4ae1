// SPDX-License-Identifier: Apache-2.0
// The IKE punt channel: IKE datagrams (marker stripped) go to the IKE daemon behind a 40-byte
// header, and its replies come back the same way to be sent with the marker (docs/INTERFACE.md
// "The IKE punt channel"). The channel socket is not connected: each datagram is addressed to
// the daemon, so a daemon that restarts and binds its address again gets the next one.
import CLinux
import ESP
import Forwarding
import UDPEncap

#if canImport(Glibc)
  import Glibc
#endif

/// A datagram socket for the `ike.punt` target (UDP or Unix), the `ike.listen` sockets (port 500,
/// every datagram IKE), and one epoll descriptor over them all for the loop to wait on. Owns its
/// descriptors. Used by one worker thread.
public final class PuntChannel {
  private let channel: OwnedFD
  private let poller: OwnedFD
  public var fd: Int32 { channel.raw }
  /// Readable when a reply or a port-500 datagram waits (epoll over ``fd`` and ``listeners``).
  public var pollFD: Int32 { poller.raw }
  public let target: PuntTarget
  /// `ike.punt_local`: the address ``fd`` is bound to (nil: autobound).
  public let local: PuntTarget?
  /// `ike.listen`: sockets where every datagram is IKE, without a marker.
  public let listeners: [UDPSocket]
  /// Datagrams that could not be handed over (the daemon is not reading and the queue, bounded by
  /// `limits.ike_queue_bytes`, is full, or the daemon is not there): counted, dropped.
  public private(set) var dropped: UInt64 = 0
  /// Datagrams on the channel from anyone but the daemon's address: counted, dropped.
  public private(set) var foreign: UInt64 = 0
  /// Datagrams over `limits.ike_per_second` (all sources): counted, dropped before the queue.
  public var rateLimited: UInt64 { limiter.globalLimited }
  /// Datagrams over `limits.ike_per_source_per_second` from their source address: counted, dropped.
  public var sourceLimited: UInt64 { limiter.sourceLimited }
  /// The send buffer the kernel granted (it doubles what is asked, for its bookkeeping).
  public let queueBytes: Int
  public private(set) var punted: UInt64 = 0
  public private(set) var replies: UInt64 = 0
  /// Datagrams received on the `ike.listen` sockets (before the rate limits).
  public private(set) var listenReceived: UInt64 = 0
  /// Whether the daemon's address refused the last datagram (no socket there): hellos are then
  /// sent once a second until one is taken.
  public private(set) var unreachable = false
  /// Called on the loop's thread when the daemon's address stops or starts taking datagrams.
  public var onReachability: (Bool) -> Void = { _ in }
  let buffer: UnsafeMutableRawPointer
  /// Where a datagram from an `ike.listen` socket is read before it is punted.
  let listenBuffer: UnsafeMutableRawPointer
  /// The largest datagram read from an `ike.listen` socket (UDP's limit).
  static let listenCapacity = 65536
  /// The daemon's address, as sendto(2) takes it.
  var targetAddress = sockaddr_storage()
  var targetLength: socklen_t = 0
  var lastHello: UInt64 = 0
  /// The inode of the `punt_local` socket file espd bound (unlinked at exit only if still its own).
  var localInode: FileID? = nil
  /// A Unix sender whose path names the daemon's socket another way (a symlink such as
  /// /var/run -> /run): accepted once its inode matched.
  var knownSender: [UInt8] = []
  /// The rate limits, per source address and in all.
  var limiter: IKERateLimiter

  /// Opens the channel.
  /// - Parameters:
  ///   - target: where the daemon listens.
  ///   - local: espd's own end (nil: an address of the kernel's choosing).
  ///   - listen: the `ike.listen` endpoints.
  ///   - mark: SO_MARK of the `ike.listen` sockets (as the listen sockets).
  ///   - queueBytes: the socket's send buffer: what may wait for the daemon (the kernel doubles it
  ///     for its bookkeeping, as socket(7) says).
  ///   - perSecond: datagrams punted per second at most, with one second of burst.
  ///   - perSource: datagrams punted per second at most from one source address.
  public init(
    target: PuntTarget, local: PuntTarget? = nil, listen: [Endpoint] = [], mark: UInt32? = nil,
    queueBytes: Int = Limits().ikeQueueBytes, perSecond: Int = Limits().ikePerSecond,
    perSource: Int = Limits().ikePerSourcePerSecond
  ) throws(SystemError) {
    self.target = target
    self.local = local
    limiter = IKERateLimiter(perSecond: perSecond, perSource: perSource)
    let fd = try PuntChannel.open(target: target, local: local)
    let inode = PuntChannel.localInode(local)
    let listeners: [UDPSocket]
    let poller: OwnedFD
    do throws(SystemError) {
      listeners = try listen.map { (e) throws(SystemError) in
        try UDPSocket(listen: e, mark: mark, receiveBuffer: 1 << 21, sendBuffer: 1 << 21)
      }
      poller = try PuntChannel.poller(over: [fd.raw] + listeners.map(\.fd))
    } catch {
      // The descriptors made so far close on the way out; the socket file goes if still ours.
      if let inode, case .unix(let path)? = local, PuntChannel.inode(path) == inode { Sys.unlink(path) }
      throw error
    }
    self.queueBytes = Sys.setBufferSize(fd.raw, force: SO_SNDBUFFORCE, plain: SO_SNDBUF, queueBytes)
    channel = fd
    self.listeners = listeners
    self.poller = poller
    localInode = inode
    targetLength = withUnsafeMutableBytes(of: &targetAddress) { PuntChannel.address(target, to: $0.baseAddress!) }
    buffer = UnsafeMutableRawPointer.allocate(byteCount: 65536 + PuntHeader.size, alignment: 16)
    listenBuffer = UnsafeMutableRawPointer.allocate(byteCount: PuntChannel.listenCapacity, alignment: 16)
  }

  /// An epoll descriptor readable when one of `sockets` is.
  static func poller(over sockets: [Int32]) throws(SystemError) -> OwnedFD {
    let poller = try Sys.epoll("cannot create the IKE channel's epoll descriptor")
    for d in sockets { try Sys.watch(d, on: poller.raw, "cannot watch the IKE channel's sockets") }
    return poller
  }

  /// The device and inode of a file (nil if there is none).
  static func inode(_ path: String) -> FileID? {
    guard let st = Sys.fileStatus(path) else { return nil }
    return FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
  }

  /// The inode of the socket file `local` names, once bound.
  static func localInode(_ local: PuntTarget?) -> FileID? {
    guard case .unix(let path)? = local else { return nil }
    return inode(path)
  }

  /// The channel socket, bound to `local` (a Unix path is replaced if a socket file is there).
  static func open(target: PuntTarget, local: PuntTarget?) throws(SystemError) -> OwnedFD {
    let sockType = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
    let family: Int32 =
      switch target {
      case .udp(let e): e.address.isV6 ? AF_INET6 : AF_INET
      case .unix: AF_UNIX
      }
    let fd = try Sys.socket(family, sockType, 0, "cannot create the IKE punt socket")
    var storage = sockaddr_storage()
    let length: socklen_t
    switch local {
    case nil where family == AF_UNIX:
      // An abstract address of the kernel's choosing (autobind: the family alone), so the daemon
      // can reply to us and no two channels, or two espd, ever want the same name.
      storage.ss_family = sa_family_t(AF_UNIX)
      length = socklen_t(MemoryLayout<sa_family_t>.size)
    case nil: return fd  // UDP: an ephemeral port at the first send
    case .unix(let path)?:
      length = withUnsafeMutableBytes(of: &storage) { PuntChannel.address(.unix(path), to: $0.baseAddress!) }
      // A socket file left by a former espd is replaced; one another process is bound to (a
      // datagram connect succeeds) is not taken from it, and anything else there is an error.
      if let st = Sys.fileStatus(path), (st.st_mode & S_IFMT) == S_IFSOCK {
        var live = false
        if let probe = try? Sys.socket(AF_UNIX, sockType, 0, "cannot create a socket") {
          live = (try? Sys.connect(probe.raw, &storage, length, "probe \(path)")) != nil
        }
        if live {
          throw SystemError(
            "cannot bind the IKE punt socket to \(path): another process is bound there", errno: EADDRINUSE)
        }
        Sys.unlink(path)  // left by a former espd
      }
    case .udp(let e)?:
      length = withUnsafeMutableBytes(of: &storage) { SocketAddress.write(e, to: $0.baseAddress!) }
    }
    try Sys.bind(
      fd.raw, &storage, length, "cannot bind the IKE punt socket to \(local.map { "\($0)" } ?? "an address")")
    // Best effort: datagrams from anyone but the daemon are dropped anyway (`foreign`).
    if case .unix(let path)? = local { try? Sys.chmod(path, 0o600, "cannot set mode 0600 on \(path)") }
    return fd
  }

  /// Writes `target` as a sockaddr at `p` (room for a sockaddr_storage).
  /// - Returns: its length.
  static func address(_ target: PuntTarget, to p: UnsafeMutableRawPointer) -> socklen_t {
    switch target {
    case .udp(let e): return SocketAddress.write(e, to: p)
    case .unix(let path):
      var a = sockaddr_un()
      a.sun_family = sa_family_t(AF_UNIX)
      withUnsafeMutableBytes(of: &a.sun_path) { b in
        for (i, c) in path.utf8.prefix(b.count - 1).enumerated() { b[i] = c }
      }
      p.storeBytes(of: a, as: sockaddr_un.self)
      return socklen_t(MemoryLayout<sockaddr_un>.size)
    }
  }

  deinit {
    // Only our own socket file: another espd may have bound the path since.
    if let localInode, case .unix(let path)? = local, let now = PuntChannel.inode(path), now == localInode {
      Sys.unlink(path)
    }
    buffer.deallocate()
    listenBuffer.deallocate()
  }

  /// Datagrams read from one `ike.listen` socket per wake-up at most (the rest wait for the next).
  static let listenBatch = 64

  /// Hands what waits on the `ike.listen` sockets to the daemon, whole: no marker there, and every
  /// datagram is IKE (RFC 7296 §2.23). The rate limits apply as on the listen ports.
  public func readListeners() {
    for l in listeners {
      for _ in 0..<PuntChannel.listenBatch {
        guard let (n, from, to) = l.receive(into: listenBuffer, capacity: PuntChannel.listenCapacity) else { break }
        listenReceived &+= 1
        punt(UnsafeRawBufferPointer(start: listenBuffer, count: n), from: from, to: to)
      }
    }
  }

  /// Hands one IKE message (marker already stripped) to the daemon.
  public func punt(_ ike: UnsafeRawBufferPointer, from remote: Endpoint, to local: Endpoint) {
    guard ike.count <= 65536, let base = ike.baseAddress else { return }
    guard limiter.admit(remote.address, now: LoopCore.now()) else { return }
    PuntChannel.header(source: remote, destination: local).write(to: buffer)
    (buffer + PuntHeader.size).copyMemory(from: base, byteCount: ike.count)
    if sendToDaemon(PuntHeader.size + ike.count) { punted &+= 1 } else { dropped &+= 1 }
  }

  /// Announces espd's end of the channel (a header with family 0): at start, and once a second
  /// while the daemon's address refuses datagrams (``retryHello(now:)``).
  @discardableResult
  public func hello() -> Bool {
    PuntHeader.writeHello(to: buffer)
    return sendToDaemon(PuntHeader.size)
  }

  /// Seconds between hellos while the daemon takes datagrams: a daemon that restarted learns
  /// espd's end of the channel within this (it needs it to initiate, unless it was told it).
  static let helloInterval: UInt64 = 5_000_000_000

  /// Sends a hello once a second while the daemon's address refuses datagrams, else every
  /// ``helloInterval``.
  func retryHello(now: UInt64) {
    let interval = unreachable ? 1_000_000_000 : PuntChannel.helloInterval
    guard now &- lastHello >= interval else { return }
    lastHello = now
    hello()
  }

  /// Sends `length` bytes of ``buffer`` to the daemon, noting when its address starts or stops
  /// taking datagrams (ECONNREFUSED, ENOENT: nobody there).
  private func sendToDaemon(_ length: Int) -> Bool {
    let n = withUnsafePointer(to: &targetAddress) {
      Sys.send(fd, buffer, length, to: $0, targetLength)
    }
    if n >= 0 {
      if unreachable {
        unreachable = false
        onReachability(true)
      }
      return true
    }
    let err = errno
    if !unreachable && (err == ECONNREFUSED || err == ENOENT || err == ENOTCONN) {
      unreachable = true
      lastHello = LoopCore.now()
      onReachability(false)
    }
    return false
  }

  /// Reads one reply from the daemon.
  /// - Returns: the header and the IKE message, valid until the next call; nil when none is waiting
  ///   (a reply without a valid header is counted in `dropped`, one from anyone but the daemon in
  ///   `foreign`).
  public func receive() -> (PuntHeader, UnsafeRawBufferPointer)? {
    // Bounded: a flood of strangers' datagrams keeps the loop no longer than one batch (the poll
    // descriptor stays readable for the rest).
    for _ in 0..<PuntChannel.listenBatch {
      var from = sockaddr_storage()
      var fromLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
      let n = withUnsafeMutablePointer(to: &from) {
        Sys.receive(fd, buffer, 65536 + PuntHeader.size, from: $0, &fromLength)
      }
      if n < 0 { return nil }
      guard fromDaemon(&from, fromLength) else {
        foreign &+= 1
        continue
      }
      guard let h = PuntHeader.parse(UnsafeRawBufferPointer(start: buffer, count: n)) else {
        dropped &+= 1
        continue
      }
      replies &+= 1
      return (h, UnsafeRawBufferPointer(start: buffer + PuntHeader.size, count: n - PuntHeader.size))
    }
    return nil
  }

  /// Whether a datagram's sender is the daemon's address (a Unix sender is compared by path).
  private func fromDaemon(_ from: inout sockaddr_storage, _ length: socklen_t) -> Bool {
    switch target {
    case .udp(let e):
      return withUnsafeBytes(of: &from) { SocketAddress.read($0.baseAddress!) } == e
    case .unix(let path):
      let offset = MemoryLayout<sa_family_t>.size
      guard Int(length) > offset, from.ss_family == sa_family_t(AF_UNIX) else { return false }
      let name = withUnsafeBytes(of: &from) { b in Array(b[offset..<min(Int(length), b.count)].prefix { $0 != 0 }) }
      if name.elementsEqual(path.utf8) || (!knownSender.isEmpty && name == knownSender) { return true }
      // The same socket under another spelling of its path (a symlinked directory, `//`, a
      // relative path): the same inode. Abstract names (a leading NUL) are never the daemon's.
      guard !name.isEmpty, let theirs = PuntChannel.inode(String(decoding: name, as: UTF8.self)),
        let ours = PuntChannel.inode(path), theirs == ours
      else { return false }
      knownSender = name
      return true
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

/// A file's identity: its device and inode.
struct FileID: Equatable {
  let device: UInt64
  let inode: UInt64
}
