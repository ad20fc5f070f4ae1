// SPDX-License-Identifier: Apache-2.0
// What the workers hand to the control thread: lifetime events, reload and print requests.
import ESP
import Glibc
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct MailboxTests {
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
