// SPDX-License-Identifier: Apache-2.0
// The values of `espd` options that are words: parsed by ArgumentParser, which refuses anything else
// and lists the valid spellings.
import ArgumentParser
import Dataplane
import Logging

extension IOBackend: ExpressibleByArgument, CaseIterable {
  public static let allCases: [IOBackend] = [.uring, .mmsg]
}

/// `--log-level`: swift-log's levels, by their names.
enum LogLevel: String, CaseIterable, ExpressibleByArgument {
  case trace, debug, info, notice, warning, error, critical

  var level: Logger.Level {
    switch self {
    case .trace: .trace
    case .debug: .debug
    case .info: .info
    case .notice: .notice
    case .warning: .warning
    case .error: .error
    case .critical: .critical
    }
  }
}

/// `--log-format`.
enum LogFormat: String, CaseIterable, ExpressibleByArgument {
  case text, json
}

/// `--tun-offload`, `--udp-gso`, `--udp-gro`.
enum Switch: String, CaseIterable, ExpressibleByArgument {
  case on, off

  var isOn: Bool { self == .on }
}

/// `espd keys --format`.
enum KeysFormat: String, CaseIterable, ExpressibleByArgument {
  case wireshark
}
