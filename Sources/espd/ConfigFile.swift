// SPDX-License-Identifier: Apache-2.0
// Loads and validates a configuration file for the subcommands, reporting problems the CLI way.
import ArgumentParser
import Dataplane
import Forwarding

enum ConfigFile {
  /// Reads and validates `path`; on any problem prints one line per problem to stderr
  /// (`espd: <problem>`) and exits 2.
  static func load(_ path: String) throws -> Config {
    let bytes: [UInt8]
    switch FileIO.read(path, limit: ConfigParser.maxFileBytes) {
    case .success(let b): bytes = b
    case .failure(let e):
      printError("espd: \(e)")
      throw ExitCode(2)
    }
    switch ConfigParser.parse(bytes: bytes) {
    case .success(let config): return config
    case .failure(let errors):
      for p in errors.problems { printError("espd: \(p)") }
      throw ExitCode(2)
    }
  }
}
