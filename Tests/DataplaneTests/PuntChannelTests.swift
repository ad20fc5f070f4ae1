// SPDX-License-Identifier: Apache-2.0
// The IKE punt channel with an IKE daemon that restarts, replies from strangers, a known address
// for espd's end (ike.punt_local) with a hello, and the port-500 sockets (ike.listen) where every
// datagram is IKE. Real AF_UNIX and UDP sockets on loopback.
import ESP
import Testing
import UDPEncap

@testable import Dataplane
@testable import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// The daemon reads whole datagrams and sends to a path (espd's end of the channel).
extension Daemon {
  convenience init(_ path: String) { self.init(path: path) }
  /// The next datagram, waiting up to a second.
  func read() -> [UInt8]? {
    var buffer = [UInt8](repeating: 0, count: 70_000)
    for _ in 0..<1000 {
      let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
      if n >= 0 { return Array(buffer[0..<n]) }
      usleep(1000)
    }
    return nil
  }
  func send(_ bytes: [UInt8], to path: String) -> Bool {
    var a = Daemon.address(path)
    return bytes.withUnsafeBytes { b in
      withUnsafePointer(to: &a) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          sendto(
            fd, b.baseAddress, b.count, 0, $0,
            socklen_t(MemoryLayout<sockaddr_un>.size))
        }
      }
    } == bytes.count
  }
}

private func tempPath(_ tag: String) -> String {
  "/tmp/espd-punt-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
}

/// A reply as the daemon sends it: header (source = espd's address to send from) and message.
private func reply(from source: Endpoint, to peer: Endpoint, raw: Bool = false, _ ike: [UInt8]) -> [UInt8] {
  var h = PuntChannel.header(source: source, destination: peer)
  h.raw = raw
  var out = [UInt8](repeating: 0, count: PuntHeader.size)
  out.withUnsafeMutableBytes { h.write(to: $0.baseAddress!) }
  return out + ike
}

@Suite struct PuntChannelTests {
  static let peer = Endpoint(address: IPAddress("203.0.113.7")!, port: 500)
  static let local = Endpoint(address: IPAddress("192.0.2.1")!, port: 500)

  /// espd says hello from its fixed address at start; the daemon's replies from that address
  /// come back, a stranger's are counted and dropped.
  @Test func aHelloFromAKnownAddressAndOnlyTheDaemonsReplies() throws {
    let daemon = Daemon(tempPath("daemon"))
    let espdEnd = tempPath("espd")
    let punt = try PuntChannel(target: .unix(daemon.path), local: .unix(espdEnd))
    #expect(punt.hello())
    let hello = try #require(daemon.read())
    #expect(hello.count == PuntHeader.size && hello[0] == 0x45 && hello[1] == 0x50 && hello[2] == 1 && hello[3] == 0)
    #expect(hello[4...].allSatisfy { $0 == 0 })

    #expect(daemon.send(reply(from: Self.local, to: Self.peer, [1, 2, 3]), to: espdEnd))
    let stranger = Daemon(tempPath("stranger"))
    #expect(stranger.send(reply(from: Self.local, to: Self.peer, [9, 9]), to: espdEnd))
    #expect(daemon.send(reply(from: Self.local, to: Self.peer, raw: true, [0xFF]), to: espdEnd))
    usleep(10_000)
    let (h1, m1) = try #require(punt.receive())
    #expect(!h1.raw && Array(m1) == [1, 2, 3] && PuntChannel.endpoints(h1) == (Self.local, Self.peer))
    let (h2, m2) = try #require(punt.receive())
    #expect(h2.raw && Array(m2) == [0xFF])
    #expect(punt.receive() == nil)
    #expect(punt.foreign == 1 && punt.replies == 2 && punt.dropped == 0)
  }

  /// A daemon that goes away and binds its address again gets the next datagram: the channel is
  /// not connected. Meanwhile datagrams are counted as dropped, and hellos go once a second.
  @Test func aDaemonThatRestartsGetsTheNextDatagram() throws {
    let path = tempPath("daemon")
    var daemon: Daemon? = Daemon(path)
    let punt = try PuntChannel(target: .unix(path))
    var changes: [Bool] = []
    punt.onReachability = { changes.append($0) }
    let ike: [UInt8] = [0x11, 0x22, 0x33, 0x44]
    ike.withUnsafeBytes { punt.punt($0, from: Self.peer, to: Self.local) }
    #expect(daemon?.read()?.count == PuntHeader.size + 4)
    daemon = nil  // the daemon stops: its socket file goes
    ike.withUnsafeBytes { punt.punt($0, from: Self.peer, to: Self.local) }
    #expect(punt.unreachable && punt.dropped == 1 && changes == [false])
    let again = Daemon(path)
    punt.retryHello(now: LoopCore.now())  // less than a second since: no hello yet
    #expect(again.read() == nil && punt.unreachable)
    punt.retryHello(now: LoopCore.now() + 2_000_000_000)
    let hello = try #require(again.read())
    #expect(hello.count == PuntHeader.size && hello[3] == 0)
    #expect(!punt.unreachable && changes == [false, true])
    ike.withUnsafeBytes { punt.punt($0, from: Self.peer, to: Self.local) }
    let d = try #require(again.read())
    #expect(Array(d[PuntHeader.size...]) == ike && punt.punted == 2)
  }

  /// Every datagram on an `ike.listen` socket goes to the daemon whole (four zero bytes at its
  /// start are not taken for a marker), with its source and the address it reached.
  @Test func thePort500SocketsPuntEveryDatagramWhole() throws {
    let daemon = Daemon(tempPath("daemon"))
    let port = UInt16.random(in: 40000...50000)
    let listen = Endpoint(address: IPAddress("127.0.0.1")!, port: port)
    let punt = try PuntChannel(target: .unix(daemon.path), listen: [listen])
    #expect(punt.listeners.count == 1)
    let client = try UDPSocket(listen: Endpoint(address: IPAddress("127.0.0.1")!, port: port + 1), mark: nil)
    let datagram: [UInt8] = [0, 0, 0, 0, 0xAB, 0xCD] + [UInt8](repeating: 7, count: 300)
    _ = try datagram.withUnsafeBytes { try client.send($0, to: listen, from: IPAddress("127.0.0.1")!) }
    var pfd = pollfd(fd: punt.pollFD, events: Int16(POLLIN), revents: 0)
    #expect(poll(&pfd, 1, 1000) == 1, "the channel's poll descriptor wakes for a port-500 datagram")
    punt.readListeners()
    let got = try #require(daemon.read())
    let h = try #require(got.withUnsafeBytes { PuntHeader.parse($0) })
    let (source, destination) = PuntChannel.endpoints(h)
    #expect(source == client.local && destination == listen)
    #expect(Array(got[PuntHeader.size...]) == datagram)
    #expect(punt.listenReceived == 1 && punt.punted == 1)
    // A reply whose source is the port-500 socket is sent from it (the loop picks it).
    #expect(LoopCore.listener(for: listen, in: punt.listeners) === punt.listeners[0])
    #expect(LoopCore.listener(for: Endpoint(address: IPAddress("127.0.0.1")!, port: 4500), in: punt.listeners) == nil)
    // a reply charon sends "from 0.0.0.0:500" (no address chosen yet) leaves from the port-500 socket
    #expect(LoopCore.listener(for: Endpoint(address: .v4(0), port: port), in: punt.listeners) === punt.listeners[0])
  }

  /// `punt_local` is not taken from a process bound there, and at exit espd removes only its own
  /// socket file (another espd may have bound the path since).
  @Test func puntLocalIsNeverTakenFromAnotherProcess() throws {
    let daemon = Daemon(tempPath("daemon"))
    let busy = Daemon(tempPath("busy"))
    #expect(throws: SystemError.self) { try PuntChannel(target: .unix(daemon.path), local: .unix(busy.path)) }
    #expect(access(busy.path, F_OK) == 0, "the other process's socket file is still there")
    let path = tempPath("espd")
    var punt: PuntChannel? = try PuntChannel(target: .unix(daemon.path), local: .unix(path))
    #expect(punt != nil && access(path, F_OK) == 0)
    unlink(path)
    let successor = Daemon(path)  // another espd bound the path meanwhile
    punt = nil
    #expect(access(successor.path, F_OK) == 0, "espd removed a socket file it did not bind")
  }

  /// The daemon's socket named through a symlinked directory (/var/run -> /run) is the same
  /// socket: its replies are taken.
  @Test func theDaemonUnderAnotherSpelling() throws {
    let dir = "/tmp/espd-punt-dir-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let link = dir + "-link"
    mkdir(dir, 0o700)
    symlink(dir, link)
    defer {
      unlink(link)
      rmdir(dir)
    }
    let daemon = Daemon(dir + "/ike.sock")
    let espdEnd = tempPath("espd")
    let punt = try PuntChannel(target: .unix(link + "/ike.sock"), local: .unix(espdEnd))
    #expect(daemon.send(reply(from: Self.local, to: Self.peer, [2, 2]), to: espdEnd))
    usleep(10_000)
    let (_, m) = try #require(punt.receive())
    #expect(Array(m) == [2, 2] && punt.foreign == 0 && punt.replies == 1)
  }

  /// A flood of strangers' datagrams costs a bounded batch per call (UDP: a deep queue); hellos
  /// go every few seconds while the daemon takes them, so a restarted one learns espd's end.
  @Test func aFloodCostsABoundedBatchAndHellosRepeat() throws {
    let loopback = IPAddress("127.0.0.1")!
    let base = UInt16.random(in: 40000...50000)
    let daemon = try UDPSocket(listen: Endpoint(address: loopback, port: base), mark: nil)
    let espdEnd = Endpoint(address: loopback, port: base + 1)
    let punt = try PuntChannel(target: .udp(daemon.local), local: .udp(espdEnd))
    let stranger = try UDPSocket(listen: Endpoint(address: loopback, port: base + 2), mark: nil)
    for _ in 0..<100 {
      _ = try reply(from: Self.local, to: Self.peer, [1]).withUnsafeBytes {
        try stranger.send($0, to: espdEnd, from: loopback)
      }
    }
    _ = try reply(from: Self.local, to: Self.peer, [2, 2]).withUnsafeBytes {
      try daemon.send($0, to: espdEnd, from: loopback)
    }
    usleep(10_000)
    #expect(punt.receive() == nil, "one call reads a batch of strangers at most")
    #expect(punt.foreign == UInt64(PuntChannel.listenBatch))
    let (_, m) = try #require(punt.receive())
    #expect(Array(m) == [2, 2] && punt.foreign == 100 && punt.replies == 1)
    punt.retryHello(now: LoopCore.now() + PuntChannel.helloInterval + 1)
    usleep(10_000)
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 16)
    defer { buffer.deallocate() }
    let (n, from, _) = try #require(daemon.receive(into: buffer, capacity: 2048))
    #expect(n == PuntHeader.size && buffer.load(fromByteOffset: 3, as: UInt8.self) == 0 && from == espdEnd)
  }

  @Test func theRawBitAndTheHelloRoundTrip() throws {
    var h = PuntChannel.header(source: Self.local, destination: Self.peer)
    h.raw = true
    var bytes = [UInt8](repeating: 0, count: PuntHeader.size)
    bytes.withUnsafeMutableBytes { h.write(to: $0.baseAddress!) }
    #expect(bytes[3] == 0x84)
    let back = try #require(bytes.withUnsafeBytes { PuntHeader.parse($0) })
    #expect(back == h && back.raw && back.family == 4)
    bytes.withUnsafeMutableBytes { PuntHeader.writeHello(to: $0.baseAddress!) }
    #expect(bytes.withUnsafeBytes { PuntHeader.parse($0) } == nil, "espd never takes a hello as a reply")
    bytes[3] = 0x85
    #expect(bytes.withUnsafeBytes { PuntHeader.parse($0) } == nil)
  }
}
