// SPDX-License-Identifier: Apache-2.0
// The `bench` executable: micro- and macro-benchmarks that print one JSON line per case.
import ArgumentParser
import ESP

@main
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "espd benchmarks: one JSON line per case, with the raw OpenSSL rate measured in the same run.",
    discussion: """
      Build with `swift build -c release`. Each case warms up, then runs batches of 128 packets for
      --seconds. `ratio_to_raw` divides espd's packet rate by the rate of the bare OpenSSL EVP calls
      (no ESP framing) on the same payload size, measured in the same process just before.
      """,
    subcommands: [Seal.self, Open.self, PipelineCommand.self, TunnelsCommand.self, ControlCommand.self]
  )
}

/// Options shared by the crypto cases.
struct CryptoOptions: ParsableArguments {
  @Option(help: "Algorithms (comma-separated), or 'all'.")
  var alg: String = "aes128gcm16"

  @Option(help: "Payload sizes in bytes (comma-separated).")
  var size: String = "64,512,1400"

  @Option(help: "Measured seconds per case (after a warm-up of a quarter of that).")
  var seconds: Double = 1.0

  @Flag(help: "Print only the JSON lines (no header line, no table).")
  var json = false

  func algorithms() throws -> [ESPAlgorithm] {
    if alg == "all" { return ESPAlgorithm.allCases }
    return try alg.split(separator: ",").map {
      guard let a = ESPAlgorithm(rawValue: String($0)) else { throw ValidationError("unknown --alg \($0)") }
      return a
    }
  }

  func sizes() throws -> [Int] {
    try size.split(separator: ",").map {
      guard let n = Int($0), n >= 0, n <= 1500 else { throw ValidationError("--size \($0): expected 0...1500") }
      return n
    }
  }
}

struct Seal: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "ESP encapsulation (seal) vs raw EVP seal.")
  @OptionGroup var options: CryptoOptions

  func run() throws {
    try CryptoBench.run(direction: .seal, options: options)
  }
}

struct Open: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "ESP decapsulation (open) vs raw EVP open.")
  @OptionGroup var options: CryptoOptions

  func run() throws {
    try CryptoBench.run(direction: .open, options: options)
  }
}
