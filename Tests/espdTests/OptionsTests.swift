// SPDX-License-Identifier: Apache-2.0
// The word options of `espd run` and `espd keys`: their spellings and defaults, and ArgumentParser
// refusing any other word with the list of valid ones.
import ArgumentParser
import Forwarding
import Logging
import Testing

@testable import espd

@Suite struct OptionsTests {
  @Test func spellingsAndDefaults() throws {
    let d = try Run.parse([])
    #expect(d.io == .uring && d.logLevel == .info && d.logFormat == .text)
    #expect(d.tunOffload == .on && d.udpGso == .on && d.udpGro == .on)
    let r = try Run.parse([
      "--io", "mmsg", "--log-level", "critical", "--log-format", "json", "--tun-offload", "off", "--udp-gso", "off",
      "--udp-gro", "off",
    ])
    #expect(r.io == .mmsg && r.logLevel == .critical && r.logFormat == .json)
    #expect(!r.tunOffload.isOn && !r.udpGso.isOn && !r.udpGro.isOn)
    #expect(try KeysCommand.parse(["--config", "c.json"]).format == .wireshark)
  }

  @Test func otherWordsAreRefusedWithTheValidOnes() {
    let cases: [([String], [String])] = [
      (["--io", "epoll"], ["'uring' and 'mmsg'"]),
      (["--log-format", "xml"], ["'text' and 'json'"]),
      (["--tun-offload", "yes"], ["'on' and 'off'"]), (["--udp-gso", "1"], ["'on' and 'off'"]),
      (["--udp-gro", "true"], ["'on' and 'off'"]),
      (["--log-level", "verbose"], ["trace", "debug", "info", "notice", "warning", "error", "critical"]),
    ]
    for (arguments, valid) in cases {
      do {
        _ = try Run.parse(arguments)
        Issue.record("accepted \(arguments)")
      } catch {
        let message = Run.message(for: error)
        #expect(message.contains("'\(arguments[1])' is invalid for '\(arguments[0])"), "\(message)")
        for v in valid { #expect(message.contains(v), "\(arguments): \(message)") }
      }
    }
    #expect(throws: (any Error).self) { try KeysCommand.parse(["--config", "c.json", "--format", "k"]) }
  }

  @Test func logLevelsAreSwiftLogs() {
    #expect(LogLevel.allCases.map(\.level) == Logger.Level.allCases)
    for l in LogLevel.allCases { #expect(l.level.rawValue == l.rawValue) }
  }
}

@Suite struct JSONLogTests {
  /// The line as the string-built handler wrote it.
  @Test func lineAsBefore() {
    var h = JSONLogHandler(label: "espd")
    h.metadata = ["tunnel": "a\"b"]
    let line = h.line(time: 1_764_700_000.25, level: .warning, message: "reload: \"x\"\n", metadata: nil)
    func json(_ s: String) -> String { JSONValue.string(s).jsonText }
    #expect(
      line
        == "{\"time\":1764700000.25,\"level\":\"warning\",\"label\":\(json("espd")),\"message\":\(json("reload: \"x\"\n"))"
        + ",\(json("tunnel")):\(json("a\"b"))}")
  }
}
