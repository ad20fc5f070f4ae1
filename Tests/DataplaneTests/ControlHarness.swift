// SPDX-License-Identifier: Apache-2.0
// The control model wired to real worker pipelines through real change queues, without I/O: what
// `espd run` does, with the workers' "between batches" under the test's control.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

/// A control model and its workers' pipelines.
final class ControlHarness {
  let model: ControlModel
  let pipelines: [Pipeline]
  let queues: [ChangeQueue]
  /// Inbound SPIs steered to a worker (what the eBPF map would hold).
  var steered: [UInt32: Int] = [:]

  init(_ config: Config, workers: Int = 1) throws {
    model = try ControlModel(config: config, workers: workers, now: 0)
    let tables = model.initialTables()
    pipelines = tables.enumerated().map { Pipeline(table: $1, worker: $0, workers: workers) }
    let queues = pipelines.map { _ in ChangeQueue() }
    self.queues = queues
    model.effects.push = { all, perWorker in
      for (w, q) in queues.enumerated() { q.push(w < perWorker.count ? all + perWorker[w] : all) }
    }
    model.effects.steer = { [unowned self] spi, owner in self.steered[spi] = owner }
  }

  var gateway: Pipeline { pipelines[0] }

  /// One request line through the model (as the control socket would).
  @discardableResult
  func request(_ line: String) -> Result<Void, ControlError> { answer(line).map { _ in } }

  /// One request line that must be accepted: the answer's members after `"ok":true`.
  @discardableResult
  func ok(_ line: String, now: UInt64 = 0) throws -> String { try answer(line, now: now).get() }

  /// One request line through the model: the answer's members after `"ok":true`, or the refusal.
  func answer(_ line: String, now: UInt64 = 0) -> Result<String, ControlError> {
    switch ControlRequest.parse(Array(line.utf8)) {
    case .success(let r): return model.apply(r, now: now).map(JSONValue.membersText)
    case .failure(let e): return .failure(e)
    }
  }

  /// Every worker applies what is queued for it (LoopCore does it before each batch).
  func drain() { for (p, q) in zip(pipelines, queues) { ControlHarness.drain(q, into: p) } }

  static func drain(_ q: ChangeQueue, into p: Pipeline) {
    var list = q.take()
    let n = list.count
    while let c = list.popLast() { p.apply(c) { _ in } }
    q.markApplied(n)
  }
}
