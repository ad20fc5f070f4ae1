// SPDX-License-Identifier: Apache-2.0
// A packet loop whose ring fails stops with the reason recorded (espd run then exits 1 and logs it),
// instead of leaving quietly. Root only: the loop runs on a TUN in a network namespace of its own.
import CLinux
import ESP
import Glibc
import Synchronization
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite(.enabled(if: getuid() == 0)) struct LoopFailureTests {
  @Test func aRingErrorEndsTheLoopWithItsReason() throws {
    let ringFD = Atomic<Int32>(-1)
    let failure = Mutex<String?>(nil)
    let setup = Mutex<String?>(nil)
    let thread = try PThread(name: "test-loop") {
      // This thread alone moves to a new network namespace: the TUN is made and removed there.
      guard CLinux_unshare_net() == 0 else {
        setup.withLock { $0 = "unshare: errno \(errno)" }
        ringFD.store(-2, ordering: .releasing)
        return
      }
      do {
        let tun = try TunDevice(name: "espdfail0")
        let core = LoopCore(
          pipeline: Pipeline(table: try LookupTables(config: Fixture.gatewayConfig([]))), tun: tun, sockets: [],
          punt: nil,
          keepaliveSeconds: 0)
        let loop = try URingLoop(core: core, signals: nil)
        ringFD.store(loop.uring.ring.ring_fd, ordering: .releasing)
        loop.run()
        failure.withLock { $0 = core.failure }
        tun.close()
      } catch {
        setup.withLock { $0 = "\(error)" }
        ringFD.store(-2, ordering: .releasing)
      }
    }
    var fd: Int32 = -1
    for _ in 0..<500 where fd == -1 {
      usleep(10_000)
      fd = ringFD.load(ordering: .acquiring)
    }
    if fd < 0 {
      thread.join()
      Issue.record("setup failed: \(setup.withLock { $0 } ?? "timed out")")
      return
    }
    usleep(50_000)
    // The ring's descriptor now names /dev/null: the loop's next io_uring_enter fails (EOPNOTSUPP).
    let null = open("/dev/null", O_RDONLY)
    #expect(dup2(null, fd) == fd)
    close(null)
    thread.join()
    let reason = try #require(failure.withLock { $0 })
    #expect(reason.hasPrefix("io_uring_submit_and_wait failed: "), "\(reason)")
  }
}
