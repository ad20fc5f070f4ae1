// SPDX-License-Identifier: Apache-2.0
// `--log-format json`: one JSON object per log line on stderr (time, level, message, metadata).
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
      "\"time\":\(time),\"level\":\"\(level)\",\"label\":\(Self.quote(label)),\"message\":\(Self.quote("\(message)"))"
    for (k, v) in metadata.merging(extra ?? [:], uniquingKeysWith: { $1 }) {
      fields += ",\(Self.quote(k)):\(Self.quote("\(v)"))"
    }
    printError("{" + fields + "}")
  }

  static func quote(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
      switch c {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case _ where c.value < 0x20: out += "\\u00" + (c.value < 16 ? "0" : "") + String(c.value, radix: 16)
      default: out.unicodeScalars.append(c)
      }
    }
    return out + "\""
  }
}
