// SPDX-License-Identifier: Apache-2.0
// The handoff between the control thread and the workers, with real threads as the workers.
import ESP
import Glibc
import Synchronization
import Testing

@testable import Dataplane

@Suite struct MailboxTests {
  /// Stand-in workers: each waits for its eventfd and parks the way LoopCore does, until stopped.
  final class Workers: @unchecked Sendable {
    let mailbox: Mailbox
    var threads: [PThread] = []
    let stop = Atomic<Bool>(false)
    init(_ mailbox: Mailbox, count: Int) throws {
      self.mailbox = mailbox
      for w in 0..<count {
        threads.append(
          try PThread(name: "test-worker") { [self] in
            while !stop.load(ordering: .acquiring) {
              var p = pollfd(fd: mailbox.loopFDs[w], events: Int16(POLLIN), revents: 0)
              if poll(&p, 1, 50) == 1 { mailbox.park(worker: w) }
            }
            mailbox.loopExited()
          })
      }
    }
    func finish() {
      stop.store(true, ordering: .releasing)
      for t in threads { t.join() }
    }
  }

  /// Two workers' pipelines, as the runtime's WorkerSet sees them.
  final class TwoPipelines: ParkedDataplane {
    let pipelines: [Pipeline]
    init(_ table: SATable) { pipelines = (0..<2).map { Pipeline(table: table, worker: $0, workers: 2) } }
    func install(_ table: SATable) -> SATable? { WorkerSet.install(table, on: pipelines) }
    func snapshot() -> StatsSnapshot { WorkerSet.merge(pipelines.map { ($0, [("batches", 3)]) }) }
  }

  @Test func publishSwapsEveryWorkerWhileTheyAreParked() throws {
    let config = Fixture.gatewayConfig([Fixture.pair(1, mode: .tunnel).gateway])
    let table = try SATable(config: config)
    let set = TwoPipelines(table)
    let mailbox = try Mailbox(workers: 2)
    mailbox.dataplane = set
    let workers = try Workers(mailbox, count: 2)
    let next = try SATable(config: Fixture.gatewayConfig([]), previous: (table, config))
    try mailbox.publish(next)
    #expect(set.pipelines.allSatisfy { $0.table === next })
    set.pipelines[1].counters.count(.keepalive)
    set.pipelines[0].counters.count(.keepalive)
    let stats = try mailbox.stats()
    #expect(stats.tunnels.isEmpty && stats.counters.keepalive == 2)
    #expect(stats.workers.count == 2 && stats.loopCounter("batches") == 6)
    // Back-to-back pauses: a worker still leaving one is not counted as parked for the next.
    for _ in 0..<50 { _ = try mailbox.stats() }
    workers.finish()
    // After the workers have gone, waiting callers get an error instead of hanging.
    #expect(throws: Mailbox.Failure.self) { try mailbox.stats() }
    #expect(throws: Mailbox.Failure.self) { try mailbox.publish(next) }
  }

  @Test func aWorkerThatNeverParksTimesThePauseOut() throws {
    let mailbox = try Mailbox(workers: 2)
    let workers = try Workers(mailbox, count: 1)  // worker 1 never answers
    var ran = false
    #expect(throws: Mailbox.Failure.self) { try mailbox.paused { ran = true } }
    #expect(!ran)
    // Worker 0 was let go, not left parked: with worker 1 out of the count, the next pause works.
    mailbox.workers = 1
    #expect(try mailbox.paused { 7 } == 7)
    workers.finish()
  }

  @Test func eventsReloadAndPrintRequestsReachTheControlSide() throws {
    let mailbox = try Mailbox()
    let e = SAEvent(spi: 9, direction: .inbound, tunnel: "t", event: LifetimeEvent(hard: true, reason: .seconds))
    mailbox.post(events: [e, e])
    mailbox.requestReload()
    mailbox.requestStatsPrint()
    var p = pollfd(fd: mailbox.controlFD, events: Int16(POLLIN), revents: 0)
    #expect(poll(&p, 1, 0) == 1)
    let (events, reload, printStats, _) = mailbox.take()
    #expect(events == [e, e] && reload && printStats)
    #expect(poll(&p, 1, 0) == 0)
    #expect(mailbox.take().printStats == false)
  }
}
