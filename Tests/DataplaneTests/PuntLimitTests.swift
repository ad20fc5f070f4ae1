// SPDX-License-Identifier: Apache-2.0
// The IKE punt channel's bounds: a daemon that stops reading costs a bounded queue and counted
// drops, and an IKE flood beyond limits.ike_per_second is cut off and counted. Real AF_UNIX sockets.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// A Unix datagram socket bound at a fresh path, standing in for an IKE daemon.
final class Daemon {
  let fd: Int32
  let path: String
  convenience init() { self.init(path: "/tmp/espd-punt-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock") }
  /// Binds at `path` (a socket file there is replaced).
  init(path: String) {
    self.path = path
    unlink(path)
    fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    var a = Daemon.address(path)
    _ = withUnsafePointer(to: &a) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
  }
  deinit {
    close(fd)
    unlink(path)
  }
  /// `path` as a sockaddr_un.
  static func address(_ path: String) -> sockaddr_un {
    var a = sockaddr_un()
    a.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &a.sun_path) { b in for (i, c) in path.utf8.enumerated() { b[i] = c } }
    return a
  }
  private var buffer = [UInt8](repeating: 0, count: 70_000)
  /// Datagrams waiting to be read.
  func drain() -> Int {
    var n = 0
    while recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) >= 0 { n += 1 }
    return n
  }
}

@Suite struct PuntLimitTests {
  static let remote = Endpoint(address: IPAddress("203.0.113.7")!, port: 4500)
  static let other = Endpoint(address: IPAddress("203.0.113.8")!, port: 4500)
  static let local = Endpoint(address: IPAddress("192.0.2.1")!, port: 4500)

  static func flood(_ punt: PuntChannel, _ n: Int, size: Int = 300, from: Endpoint = remote, drain: Daemon? = nil) {
    let ike = [UInt8](repeating: 0x21, count: size)
    for _ in 0..<n {
      ike.withUnsafeBytes { punt.punt($0, from: from, to: local) }
      if let drain { _ = drain.drain() }
    }
  }

  /// The send buffer bounds what waits for a daemon that stopped reading: with a small one, fewer
  /// datagrams queue than the receiver's own queue limit (net.unix.max_dgram_qlen) would allow.
  @Test func aDaemonThatStopsReadingCostsABoundedQueueAndCountedDrops() throws {
    let small = Daemon()
    let tight = try PuntChannel(target: .unix(small.path), queueBytes: 4096, perSecond: 1_000_000, perSource: 1_000_000)
    Self.flood(tight, 200, size: 2000)
    #expect(tight.punted + tight.dropped == 200)
    let queuedSmall = small.drain()
    #expect(queuedSmall == Int(tight.punted))
    #expect(tight.queueBytes >= 4096 && tight.queueBytes < 65536, "send buffer \(tight.queueBytes)")

    let large = Daemon()
    let roomy = try PuntChannel(
      target: .unix(large.path), queueBytes: 1 << 20, perSecond: 1_000_000, perSource: 1_000_000)
    Self.flood(roomy, 200, size: 2000)
    let queuedLarge = large.drain()
    #expect(queuedLarge == Int(roomy.punted) && roomy.dropped > 0)
    // 4 KiB (doubled by the kernel) holds a few 2 KB datagrams; the receiver's limit holds more.
    #expect(
      queuedSmall >= 1 && queuedSmall < queuedLarge, "queued \(queuedSmall) with 4 KiB, \(queuedLarge) with 1 MiB")
    #expect(tight.rateLimited == 0 && tight.sourceLimited == 0)
  }

  @Test func anIKEFloodIsCutAtTheRateLimit() throws {
    let daemon = Daemon()
    let punt = try PuntChannel(target: .unix(daemon.path), queueBytes: 1 << 20, perSecond: 50, perSource: 1_000_000)
    let start = LoopCore.now()
    Self.flood(punt, 40, drain: daemon)
    #expect(punt.punted == 40)
    Self.flood(punt, 500, drain: daemon)
    let seconds = Double(LoopCore.now() - start) / 1e9
    // One second of burst (50), plus what the time the loop took earned; the rest counted.
    let most = 50 + UInt64(seconds * 50) + 1
    #expect(punt.punted >= 50 && punt.punted <= most, "\(punt.punted) punted at 50/s in \(seconds) s")
    #expect(punt.rateLimited == 540 - punt.punted)
    #expect(punt.dropped == 0 && punt.sourceLimited == 0)
  }

  /// One address flooding does not shut out another: it runs out of its own budget first.
  @Test func oneFloodingAddressLeavesTheOthersTheirBudget() throws {
    let daemon = Daemon()
    let punt = try PuntChannel(target: .unix(daemon.path), queueBytes: 1 << 20, perSecond: 1000, perSource: 10)
    let start = LoopCore.now()
    Self.flood(punt, 300, from: Self.remote, drain: daemon)
    let fromRemote = punt.punted
    // The limiter runs on the real clock: the burst (10), plus what the time the loop took earned
    // (a sanitized build on a busy machine can take a good part of a second).
    let seconds = Double(LoopCore.now() - start) / 1e9
    #expect(
      fromRemote >= 10 && fromRemote <= 10 + UInt64(seconds * 10) + 1,
      "\(fromRemote) of 300 punted from one address at 10/s in \(seconds) s")
    #expect(punt.sourceLimited == 300 - fromRemote)
    Self.flood(punt, 5, from: Self.other, drain: daemon)
    #expect(punt.punted - fromRemote == 5, "the other address got \(punt.punted - fromRemote) of its 5 through")
    #expect(punt.sourceLimited == 300 - fromRemote)
    #expect(punt.rateLimited == 0)
  }

  @Test func theLimiterKeepsEachSourceToItsRateOnAFixedClock() {
    var limiter = IKERateLimiter(perSecond: 100, perSource: 10)
    let a = IPAddress("203.0.113.7")!
    let b = IPAddress("2001:db8::7")!
    var admittedA = 0
    var admittedB = 0
    let t0: UInt64 = 7_000_000_000
    // Ten seconds: `a` offers 1,000 a second, `b` 5 a second.
    for ms in 0..<10_000 {
      let now = t0 + UInt64(ms) * 1_000_000
      for _ in 0..<1 where limiter.admit(a, now: now) { admittedA += 1 }
      if ms % 200 == 0 && limiter.admit(b, now: now) { admittedB += 1 }
    }
    #expect(admittedA >= 100 && admittedA <= 110, "\(admittedA) from a at 10/s over 10 s (+ burst 10)")
    #expect(admittedB == 50)
    #expect(limiter.globalLimited == 0)
    #expect(limiter.sourceLimited == UInt64(10_000 - admittedA))
  }

  @Test(arguments: [1, 1000, 20_000])
  func theTokenBucketKeepsItsRate(_ perSecond: Int) {
    var bucket = TokenBucket(perSecond: perSecond)
    let start: UInt64 = 5_000_000_000
    // The burst: one second's worth at once.
    var taken = 0
    while bucket.take(now: start) { taken += 1 }
    #expect(taken == perSecond)
    // Then ten seconds offered ten times the rate, in 1 ms steps: ten seconds' worth, within one.
    taken = 0
    for ms in 1...10_000 {
      let now = start + UInt64(ms) * 1_000_000
      for _ in 0..<max(1, perSecond / 100) where bucket.take(now: now) { taken += 1 }
    }
    #expect(abs(taken - 10 * perSecond) <= max(2, perSecond / 100), "\(taken) in 10 s at \(perSecond)/s")
  }
}
