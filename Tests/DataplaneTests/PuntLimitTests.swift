// SPDX-License-Identifier: Apache-2.0
// The IKE punt channel's bounds: a daemon that stops reading costs a bounded queue and counted
// drops, and an IKE flood beyond limits.ike_per_second is cut off and counted. Real AF_UNIX sockets.
import ESP
import Testing

@testable import Dataplane

#if canImport(Glibc)
  import Glibc
#endif

/// A Unix datagram socket bound at a fresh path, standing in for an IKE daemon.
private final class Daemon {
  let fd: Int32
  let path: String
  init() {
    path = "/tmp/espd-punt-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    var a = sockaddr_un()
    a.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &a.sun_path) { b in for (i, c) in path.utf8.enumerated() { b[i] = c } }
    _ = withUnsafePointer(to: &a) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, __CONST_SOCKADDR_ARG(__sockaddr__: $0), socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
  }
  deinit {
    close(fd)
    unlink(path)
  }
  /// Datagrams waiting to be read.
  func drain() -> Int {
    var n = 0
    var buffer = [UInt8](repeating: 0, count: 70_000)
    while recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) >= 0 { n += 1 }
    return n
  }
}

@Suite struct PuntLimitTests {
  static let ike = [UInt8](repeating: 0x21, count: 300)
  static let remote = Endpoint(address: IPAddress("203.0.113.7")!, port: 4500)
  static let local = Endpoint(address: IPAddress("192.0.2.1")!, port: 4500)

  @Test func aDaemonThatStopsReadingCostsABoundedQueueAndCountedDrops() throws {
    let daemon = Daemon()
    let punt = try PuntChannel(target: .unix(daemon.path), queueBytes: 16384, perSecond: 1_000_000)
    for _ in 0..<2000 { Self.ike.withUnsafeBytes { punt.punt($0, from: Self.remote, to: Self.local) } }
    // Every datagram is either queued or counted as dropped; the queue held a bounded number.
    #expect(punt.punted + punt.dropped == 2000)
    #expect(punt.dropped > 0, "2000 datagrams of 340 bytes fit a 16 KiB queue?")
    let queued = daemon.drain()
    #expect(queued == Int(punt.punted))
    #expect(queued < 1000, "\(queued) datagrams queued behind a 16 KiB send buffer")
    #expect(punt.rateLimited == 0)
  }

  @Test func anIKEFloodIsCutAtTheRateLimit() throws {
    let daemon = Daemon()
    let punt = try PuntChannel(target: .unix(daemon.path), queueBytes: 1 << 20, perSecond: 50)
    for _ in 0..<40 {
      Self.ike.withUnsafeBytes { punt.punt($0, from: Self.remote, to: Self.local) }
      _ = daemon.drain()  // a daemon that keeps up: only the rate limit drops
    }
    let first = punt.punted
    for _ in 0..<500 {
      Self.ike.withUnsafeBytes { punt.punt($0, from: Self.remote, to: Self.local) }
      _ = daemon.drain()
    }
    // One second of burst (50), a few more earned while the loop ran; the rest counted.
    #expect(first == 40)
    #expect(punt.punted >= 50 && punt.punted < 60, "\(punt.punted) punted at 50/s")
    #expect(punt.rateLimited == 540 - punt.punted)
    #expect(punt.dropped == 0)
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
