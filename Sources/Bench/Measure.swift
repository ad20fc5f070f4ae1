// SPDX-License-Identifier: Apache-2.0
// Timing, allocation counting and JSON output shared by every benchmark case.
import CAllocCounter

#if canImport(Glibc)
  import Glibc
#endif

/// Monotonic nanoseconds.
@inline(__always)
func nanoseconds() -> UInt64 {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// What one measured case produced.
struct Measurement {
  var packets: UInt64 = 0
  var nanos: UInt64 = 0
  var allocations: UInt64 = 0
  /// ns per packet of each batch, for percentiles.
  var batchNanosPerPacket: [Double] = []

  var pps: Double { nanos == 0 ? 0 : Double(packets) * 1e9 / Double(nanos) }
  var nsPerPacket: Double { packets == 0 ? 0 : Double(nanos) / Double(packets) }
  var allocationsPerPacket: Double { packets == 0 ? 0 : Double(allocations) / Double(packets) }

  func percentile(_ p: Double) -> Double {
    guard !batchNanosPerPacket.isEmpty else { return 0 }
    let s = batchNanosPerPacket.sorted()
    return s[min(s.count - 1, Int(Double(s.count - 1) * p))]
  }
}

/// Runs `batch` (which processes `packetsPerBatch` packets and returns the nanoseconds it spent in
/// the measured part) for a warm-up and then for `seconds`, counting allocations in the measured part.
func measure(seconds: Double, packetsPerBatch: Int, _ batch: () -> UInt64) -> Measurement {
  let warmupEnd = nanoseconds() + UInt64(seconds * 0.25e9)
  while nanoseconds() < warmupEnd { _ = batch() }
  var m = Measurement()
  m.batchNanosPerPacket.reserveCapacity(1 << 16)
  let end = nanoseconds() + UInt64(seconds * 1e9)
  while nanoseconds() < end {
    CAllocCounter_start()
    let ns = batch()
    m.allocations += CAllocCounter_stop()
    m.nanos += ns
    m.packets += UInt64(packetsPerBatch)
    m.batchNanosPerPacket.append(Double(ns) / Double(packetsPerBatch))
  }
  return m
}

/// Like ``measure(seconds:packetsPerBatch:_:)`` for two cases at once, alternating their batches.
/// - Returns: the measurements of `a` and of `b`.
func measurePair(
  seconds: Double, packetsPerBatch: Int, _ a: () -> UInt64, _ b: () -> UInt64
) -> (Measurement, Measurement) {
  let warmupEnd = nanoseconds() + UInt64(seconds * 0.25e9)
  while nanoseconds() < warmupEnd {
    _ = a()
    _ = b()
  }
  var ma = Measurement()
  var mb = Measurement()
  let end = nanoseconds() + UInt64(seconds * 2e9)
  while nanoseconds() < end {
    CAllocCounter_start()
    let nsA = a()
    ma.record(ns: nsA, packets: packetsPerBatch, allocations: CAllocCounter_stop())
    CAllocCounter_start()
    let nsB = b()
    mb.record(ns: nsB, packets: packetsPerBatch, allocations: CAllocCounter_stop())
  }
  return (ma, mb)
}

extension Measurement {
  mutating func record(ns: UInt64, packets n: Int, allocations: UInt64) {
    nanos += ns
    packets += UInt64(n)
    self.allocations += allocations
    batchNanosPerPacket.append(Double(ns) / Double(n))
  }
}

/// A JSON value for one output line (numbers, strings); no Foundation.
enum JSONValue {
  case string(String)
  case int(Int)
  case double(Double, digits: Int)

  var text: String {
    switch self {
    case .string(let s): return "\"" + s.replacingOccurrences(of: "\"", with: "\\\"") + "\""
    case .int(let i): return String(i)
    case .double(let d, let digits):
      guard d.isFinite else { return "null" }
      var scale = 1.0
      for _ in 0..<digits { scale *= 10 }
      let r = (d * scale).rounded() / scale
      return digits == 0 ? String(Int(r)) : String(r)
    }
  }
}

/// Prints one JSON object on one line, keys in the given order.
func printJSONLine(_ fields: [(String, JSONValue)]) {
  print("{" + fields.map { "\"\($0.0)\":\($0.1.text)" }.joined(separator: ",") + "}")
}

extension String {
  /// Foundation-free replace of every occurrence of `target`.
  func replacingOccurrences(of target: String, with replacement: String) -> String {
    var out = ""
    var rest = Substring(self)
    while let r = rest.firstRange(of: target) {
      out += rest[..<r.lowerBound]
      out += replacement
      rest = rest[r.upperBound...]
    }
    out += rest
    return out
  }
}

/// Pauses allocation counting on this thread (setup work inside a measured batch).
struct CAllocCounterPause {
  let count: UInt64
  init() { count = CAllocCounter_stop() }
  /// Resumes counting, keeping what was counted before the pause.
  func resume() { CAllocCounter_resume(count) }
}

/// Stops the benchmark with one line on stderr and exit status 1 (a benchmark that cannot run its
/// own setup has no figure to give; this is not input validation).
func benchFailure(_ message: String) -> Never {
  var line = "bench: " + message + "\n"
  line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
  exit(1)
}

/// Runs benchmark setup that cannot fail unless the build is broken; stops with one line if it does.
func orExit<T>(_ body: () throws -> T) -> T {
  do { return try body() } catch { benchFailure("setup failed: \(error)") }
}
