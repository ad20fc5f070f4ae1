// SPDX-License-Identifier: Apache-2.0
// `espd run`: the dataplane in the foreground, and `--selftest`.
import ArgumentParser
import ESP

#if canImport(Glibc)
  import Glibc
#endif

struct Run: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the dataplane in the foreground until SIGINT or SIGTERM.",
    discussion: """
      With --selftest, runs the built-in known-answer tests (RFC 7634, draft-mcgrew-gcm-test-01,
      RFC 3602) and anti-replay tables, prints each result, and exits 0 if all pass, 1 otherwise.
      """
  )

  @Option(name: .long, help: "The configuration file (JSON, see INTERFACE.md).")
  var config: String?

  @Option(name: .long, help: "Worker loops (one per core).")
  var workers: Int = 1

  @Option(name: .long, help: "I/O backend: uring or mmsg.")
  var io: String = "uring"

  @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
  var logLevel: String = "info"

  @Option(name: .long, help: "Log format: text or json.")
  var logFormat: String = "text"

  @Flag(name: .long, help: "Run the built-in known-answer and replay tests, then exit.")
  var selftest = false

  func run() throws {
    if selftest {
      let results = ESPSelfTest.run()
      for r in results { print("\(r.passed ? "ok  " : "FAIL") \(r.name)") }
      let failed = results.filter { !$0.passed }.count
      print("selftest: \(results.count - failed) passed, \(failed) failed")
      throw ExitCode(failed == 0 ? 0 : 1)
    }
    #if DEBUG
      // Debug builds check themselves before touching the network (the kernel's mod_init selftests).
      guard ESPSelfTest.passes() else {
        printError("espd: built-in self-test failed; refusing to start (run `espd run --selftest`)")
        throw ExitCode(1)
      }
    #endif
    guard config != nil else {
      throw ValidationError("missing --config FILE (or --selftest)")
    }
    printError("espd run: the live dataplane (TUN, sockets, io_uring) is not in this build yet; see README.md")
    throw ExitCode(1)
  }
}

/// Writes one line to standard error.
func printError(_ line: String) {
  var s = line + "\n"
  s.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
