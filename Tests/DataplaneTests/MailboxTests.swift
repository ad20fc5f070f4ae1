// SPDX-License-Identifier: Apache-2.0
// The handoff between the control thread and the loop, with a real second thread as the loop.
import ESP
import Glibc
import Testing

@testable import Dataplane

@Suite struct MailboxTests {
  /// A stand-in loop: waits for the eventfd, does the work the way LoopCore does, `rounds` times.
  func loop(_ mailbox: Mailbox, _ pipeline: Pipeline, rounds: Int) throws -> PThread {
    try PThread(name: "test-loop") {
      for _ in 0..<rounds {
        var p = pollfd(fd: mailbox.loopFD, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 3000) == 1 else { return }
        let work = mailbox.takeWork()
        var old: SATable? = nil
        if let t = work.table {
          old = pipeline.table
          pipeline.install(t, replacing: old)
        }
        let stats = work.statsWanted != 0 ? pipeline.snapshot(loop: [("batches", 7)]) : nil
        mailbox.finish(generation: work.generation, retired: old, stats: stats, statsGeneration: work.statsWanted)
      }
      mailbox.loopExited()
    }
  }

  @Test func publishReturnsOnceTheLoopUsesTheSnapshot() throws {
    let config = Fixture.gatewayConfig([Fixture.pair(1, mode: .tunnel).gateway])
    let pipeline = Pipeline(table: try SATable(config: config))
    let mailbox = try Mailbox()
    let thread = try loop(mailbox, pipeline, rounds: 2)
    let next = try SATable(config: Fixture.gatewayConfig([]), previous: (pipeline.table, config))
    try mailbox.publish(next)
    let stats = try mailbox.stats()
    #expect(stats.tunnels.isEmpty && stats.loopCounter("batches") == 7)
    thread.join()
    #expect(pipeline.table === next)
    // The replaced snapshot comes back to the control side to be released there.
    let (events, reload, dropped) = mailbox.take()
    #expect(events.isEmpty && !reload && dropped == 0)
    // After the loop has gone, waiting callers get an error instead of hanging.
    #expect(throws: Mailbox.Failure.self) { try mailbox.stats() }
    #expect(throws: Mailbox.Failure.self) { try mailbox.publish(next) }
  }

  @Test func eventsAndReloadRequestsReachTheControlSide() throws {
    let mailbox = try Mailbox()
    let e = SAEvent(spi: 9, direction: .inbound, tunnel: "t", event: LifetimeEvent(hard: true, reason: .seconds))
    mailbox.post(events: [e, e])
    mailbox.requestReload()
    var p = pollfd(fd: mailbox.controlFD, events: Int16(POLLIN), revents: 0)
    #expect(poll(&p, 1, 0) == 1)
    let (events, reload, _) = mailbox.take()
    #expect(events == [e, e] && reload)
    #expect(poll(&p, 1, 0) == 0)
  }
}
