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
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    let time = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    printError(line(time: time, level: event.level, message: event.message, metadata: event.metadata))
  }

  /// One log line: time, level, label, message, then the handler's and the event's metadata.
  func line(time: Double, level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?) -> String {
    var fields: [(key: String, value: JSONValue)] = [
      ("time", .number("\(time)")), ("level", .string("\(level)")), ("label", .string(label)),
      ("message", .string("\(message)")),
    ]
    for (k, v) in metadata.merging(extra ?? [:], uniquingKeysWith: { $1 }) { fields.append((k, .string("\(v)"))) }
    return JSONValue.object(fields).jsonText
  }
}
