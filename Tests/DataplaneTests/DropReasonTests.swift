// SPDX-License-Identifier: Apache-2.0
// Drop reasons: unique names, every ESP error mapped, counters indexed by reason.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct DropReasonTests {
  @Test func namesAreUniqueAndSnakeCase() {
    let names = DropReason.allCases.map(\.name)
    #expect(Set(names).count == names.count)
    for n in names { #expect(n.allSatisfy { $0.isLowercase || $0 == "_" }, "\(n)") }
    for required in [
      "unknown_spi", "auth_failed", "replayed", "outside_window", "malformed", "bad_padding", "selector_mismatch",
      "no_route",
    ] {
      #expect(names.contains(required))
    }
  }

  @Test func espErrorsMap() {
    #expect(DropReason(ESPError.authenticationFailed) == .authFailed)
    #expect(DropReason(ESPError.truncated) == .malformed)
    #expect(DropReason(ESPError.outsideWindow) == .outsideWindow)
    #expect(DropReason(ESPError.badPadding) == .badPadding)
  }

  @Test func countersCount() {
    var c = DropCounters()
    c.count(.replayed)
    c.count(.replayed)
    c.count(.noRoute)
    #expect(c[.replayed] == 2 && c[.noRoute] == 1 && c[.authFailed] == 0)
    #expect(c.total == 3)
  }
}
