// SPDX-License-Identifier: Apache-2.0
// `bench control run`: the timed loops over pre-built request lines, one request at a time or with a
// window of outstanding requests, and what they measured.

/// What one run of request lines measured.
struct ControlCaseResult {
  /// Requests in the run.
  var requests = 0
  /// Answers read (fewer than `requests` only when espd closed the connection).
  var answered = 0
  /// Answers that were not `{"ok":true…`, plus requests left unanswered.
  var errors = 0
  /// The first error answer (or why the run stopped), for the report.
  var firstError: String? = nil
  /// Wall time of the whole run, first write to last answer.
  var nanos: UInt64 = 0
  /// Per answered request: write to answer read, in ns.
  var latencies: [UInt64] = []
  /// Bytes of all answers (newlines excluded).
  var answerBytes = 0

  /// Wall time of the run in seconds.
  var seconds: Double { Double(nanos) / 1e9 }

  /// Events per second over the run's wall time (`count` of them: steps, pairs, requests).
  func rate(_ count: Int) -> Double { nanos == 0 ? 0 : Double(count) * 1e9 / Double(nanos) }

  /// The `p` quantile (0…1) of the answer times, in ms; `sorted` comes from ``sortedLatencies()``.
  static func quantileMs(_ sorted: [UInt64], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let i = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
    return Double(sorted[max(i, 0)]) / 1e6
  }

  /// The answer times in ascending order, for ``quantileMs(_:_:)``.
  func sortedLatencies() -> [UInt64] { latencies.sorted() }

  /// Counts an error answer (keeping the first one's text).
  @inline(__always)
  mutating func check(_ line: UnsafeBufferPointer<UInt8>) {
    answerBytes += line.count
    if !line.isOKAnswer {
      errors += 1
      if firstError == nil { firstError = line.reportText() }
    }
  }

  /// Counts the requests left without an answer when the connection ended.
  mutating func connectionEnded() {
    errors += requests - answered
    if firstError == nil { firstError = "espd closed the control connection after \(answered) answers" }
  }
}

/// The timed loops; each runs one case's pre-built lines over one connection.
enum ControlCases {
  /// Sends each line and waits for its answer before the next one.
  static func serial(_ socket: LineSocket, _ lines: RequestLines) -> ControlCaseResult {
    var r = ControlCaseResult()
    r.requests = lines.count
    var latencies = [UInt64](repeating: 0, count: lines.count)
    var answered = 0
    var failed = false
    lines.ends.withUnsafeBufferPointer { ends in
      lines.bytes.bytes.withUnsafeBytes { raw in
        let base = raw.baseAddress!
        var from = 0
        let t0 = nanoseconds()
        for i in 0..<ends.count {
          let a = nanoseconds()
          guard socket.send(base + from, ends[i] - from), let line = socket.readLine() else {
            failed = true
            break
          }
          latencies[i] = nanoseconds() - a
          r.check(line)
          answered += 1
          from = ends[i]
        }
        r.nanos = nanoseconds() - t0
      }
    }
    r.answered = answered
    r.latencies = Array(latencies[0..<answered])
    if failed { r.connectionEnded() }
    return r
  }

  /// Keeps up to `depth` requests outstanding: writes as many as the window allows in one send,
  /// then reads answers (all those already buffered without another read) and tops the window up.
  /// An answer's time runs from the send that carried its request.
  static func pipelined(_ socket: LineSocket, _ lines: RequestLines, depth: Int) -> ControlCaseResult {
    var r = ControlCaseResult()
    r.requests = lines.count
    let n = lines.count
    var sentAt = [UInt64](repeating: 0, count: n)
    var latencies = [UInt64](repeating: 0, count: n)
    var sent = 0
    var answered = 0
    var failed = false
    lines.ends.withUnsafeBufferPointer { ends in
      lines.bytes.bytes.withUnsafeBytes { raw in
        let base = raw.baseAddress!
        let t0 = nanoseconds()
        outer: while answered < n {
          if sent < n && sent - answered < depth {
            let last = min(n, answered + depth)
            let from = sent == 0 ? 0 : ends[sent - 1]
            let now = nanoseconds()
            for i in sent..<last { sentAt[i] = now }
            guard socket.send(base + from, ends[last - 1] - from) else {
              failed = true
              break
            }
            sent = last
          }
          guard let first = socket.readLine() else {
            failed = true
            break
          }
          var line = first
          while true {
            latencies[answered] = nanoseconds() - sentAt[answered]
            r.check(line)
            answered += 1
            guard answered < sent, let next = socket.readLine(wait: false) else { continue outer }
            line = next
          }
        }
        r.nanos = nanoseconds() - t0
      }
    }
    r.answered = answered
    r.latencies = Array(latencies[0..<answered])
    if failed { r.connectionEnded() }
    return r
  }
}
