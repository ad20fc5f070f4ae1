// SPDX-License-Identifier: Apache-2.0
// `bench control config`: an espd configuration with N responder tunnels, streamed to the file in
// 1 MiB writes (a million tunnels is about 250 MB of JSON).

#if canImport(Glibc)
  import Glibc
#endif

/// The configuration `bench control config` writes (tunnels from ``ControlJSON``).
enum ControlConfigFile {
  /// Tunnels the control-path benchmark adds on top of the file's (headroom in `limits`).
  static let addedTunnelsHeadroom = 100_000
  /// espd's default `limits.tunnels` (Limits.swift); a file that, with the headroom, needs more
  /// sets `limits`.
  static let defaultTunnelLimit = 1_000_000

  /// Writes the configuration (mode 0600: it holds keys).
  /// - Parameters:
  ///   - path: the file to create or replace.
  ///   - tunnels: how many tunnels (`t1`…`tN`); 0 for the baseline.
  ///   - control: the control socket path.
  ///   - tun: the TUN device's name.
  /// - Returns: the bytes written, or the error text.
  static func write(path: String, tunnels: Int, control: String, tun: String) -> Result<Int, BenchIOError> {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { return .failure(BenchIOError("cannot create \(path)", errno: errno)) }
    defer { close(fd) }
    var w = ByteWriter(capacity: 1 << 21)
    var total = 0
    func flush() -> BenchIOError? {
      defer { w.bytes.removeAll(keepingCapacity: true) }
      let written = w.bytes.withUnsafeBytes { writeAll(fd, $0.baseAddress!, $0.count) }
      total += w.bytes.count
      return written ? nil : BenchIOError("cannot write \(path)", errno: errno)
    }
    w.append("{\n\"listen\": [\"127.0.0.1:4500\"],\n\"tun\": {\"name\": ")
    w.append(jsonString(tun))
    w.append(", \"mtu\": 1400, \"addresses\": [\"198.51.100.1/24\", \"2001:db8::1/32\"]},\n\"control\": ")
    w.append(jsonString(control))
    w.append(",\n")
    if tunnels + addedTunnelsHeadroom > defaultTunnelLimit {
      let limit = tunnels + addedTunnelsHeadroom
      w.append("\"limits\": {\"tunnels\": ")
      w.appendDecimal(limit)
      w.append(", \"sas\": ")
      w.appendDecimal(4 * limit)
      w.append("},\n")
    }
    w.append("\"tunnels\": [")
    for i in stride(from: 1, through: tunnels, by: 1) {
      w.append(i == 1 ? "\n" : ",\n")
      ControlJSON.appendConfigTunnel(&w, i)
      if w.bytes.count >= 1 << 20, let e = flush() { return .failure(e) }
    }
    w.append("\n]\n}\n")
    if let e = flush() { return .failure(e) }
    return .success(total)
  }

  /// A JSON string literal of `s` (quotes, backslashes and control characters escaped).
  static func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case _ where u.value < 0x20:
        out += "\\u00"
        for d in [u.value >> 4, u.value & 0xF] {
          out.unicodeScalars.append(Unicode.Scalar(ByteWriter.hexDigits[Int(d)]))
        }
      default: out.unicodeScalars.append(u)
      }
    }
    return out + "\""
  }
}

/// A failed system call of the benchmark's own I/O, with its errno text.
struct BenchIOError: Error, CustomStringConvertible {
  let description: String
  init(_ what: String, errno e: Int32) { description = "\(what): \(String(cString: strerror(e)))" }
  init(_ what: String) { description = what }
}

/// Writes all of `count` bytes to a file (partial writes and EINTR retried).
/// - Returns: false if a write failed (errno says why).
func writeAll(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int) -> Bool {
  var done = 0
  while done < count {
    let n = write(fd, base + done, count - done)
    if n > 0 {
      done += n
    } else if n < 0 && errno == EINTR {
      continue
    } else {
      return false
    }
  }
  return true
}
