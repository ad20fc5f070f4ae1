// SPDX-License-Identifier: Apache-2.0
// `--log-format json`: one JSON object per log line on stderr (time, level, message, metadata).
import Dataplane
import Forwarding
import Logging

#if canImport(Glibc)
  import Glibc
#endif

/// Writes `{"time":…,"level":…,"label":…,"message":…}` lines to standard error.
struct JSONLogHandler: LogHandler {
  let label: String
  var logLevel: Logger.Level = .info
  var metadata: Logger.Metadata = [:]

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(event: LogEvent) {
    let level = event.level
    let message = event.message
    let extra = event.metadata
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    let time = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    var fields =
      "\"time\":\(time),\"level\":\"\(level)\",\"label\":\(Self.json(label)),\"message\":\(Self.json("\(message)"))"
    for (k, v) in metadata.merging(extra ?? [:], uniquingKeysWith: { $1 }) {
      fields += ",\(Self.json(k)):\(Self.json("\(v)"))"
    }
    printError("{" + fields + "}")
  }

  static func json(_ s: String) -> String { JSONValue.string(s).jsonText }
}
