// SPDX-License-Identifier: Apache-2.0
// The control protocol: each input line is a request to a gateway whose state carries over from
// line to line, as on one connection (parse, apply to the control model, then a worker takes its
// change queue). Byte 0 sets small limits
// (tunnels, SAs, inbound SAs a tunnel) just above the gateway's own, so that requests reach them.
// Invariants: no trap; every refusal is an answer that is valid JSON `{"ok":false,"error":"…"}` of
// one line, and a limit's refusal names its limit; a read-only request changes nothing; every
// accepted change validates as a whole, stays within the limits, and leaves every tunnel it does
// not name with the SAs it had; a refused one changes nothing; the worker's tables match the model.
import FuzzSupport

@testable import Dataplane
@testable import Forwarding

let base = FuzzGateway.config()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControl(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  var input = FuzzInput(data, size)
  var config = base
  let l = input.byte()
  let sas = base.tunnels.reduce(0) { $0 + $1.inbound.count + 1 }
  config.limits.tunnels = base.tunnels.count + Int(l & 3)
  config.limits.sas = sas + Int(l >> 2 & 7)
  config.limits.inboundSAsPerTunnel = 1 + Int(l >> 5 & 3)
  let model = try! ControlModel(config: config, workers: 1, now: 0)
  let worker = Pipeline(table: model.initialTables()[0])
  let queue = ChangeQueue()
  model.effects.push = { all, perWorker in queue.push(all + (perWorker.first ?? [])) }
  for line in input.rest.split(separator: 0x0A, omittingEmptySubsequences: true).prefix(16) {
    let before = model.config
    switch ControlRequest.parse(Array(line)) {
    case .failure(let e):
      requireAnswer(e)
    case .success(let request):
      switch model.apply(request, now: 0) {
      case .failure(let e):
        requireAnswer(e)
        require(request.isChange, "a read-only request was refused: \(e)")
        if e.isLimit { require(e.message.contains("limits."), "a limit's refusal does not name it: \(e)") }
        require(sasByTunnel(model.config) == sasByTunnel(before), "a refused request changed the tunnels")
      case .success:
        let new = model.config
        if !request.isChange {
          require(sasByTunnel(new) == sasByTunnel(before), "a read-only request changed the tunnels")
          continue
        }
        guard case .success = ConfigParser.validate(new) else {
          require(false, "an accepted change leaves a configuration that does not validate")
          return 0
        }
        require(new.tunnels.count <= new.limits.tunnels, "\(new.tunnels.count) tunnels past limits.tunnels")
        let total = new.tunnels.reduce(0) { $0 + $1.inbound.count + 1 }
        require(total <= new.limits.sas, "\(total) SAs past limits.sas")
        let named = names(request, in: before)
        let old = sasByTunnel(before)
        for (name, spis) in sasByTunnel(new) where !named.contains(name) {
          require(old[name] == spis, "tunnel \(name), not named by the request, changed its SAs")
        }
      }
    }
    // The worker, after taking its queue, holds what the model holds.
    var changes = queue.take()
    while let c = changes.popLast() { worker.apply(c) { _ in } }
    require(
      worker.table.tunnelCount == model.count,
      "the worker has \(worker.table.tunnelCount) tunnels, the model \(model.count)")
    for r in model.records {
      require(worker.table.slots[Int(r.tunnel.index)] === r.tunnel, "tunnel \(r.config.name) is not in its slot")
      for sa in r.config.inbound {
        require(worker.table.inboundSA(spi: sa.spi)?.1 === r.tunnel, "SPI \(sa.spi) does not lead to its tunnel")
      }
      require(r.tunnel.outbound.spi == r.config.outbound.spi, "tunnel \(r.config.name) seals with another SA")
    }
  }
  return 0
}

/// Each tunnel's inbound SPIs and outbound SPI, by name.
func sasByTunnel(_ c: Config) -> [String: [UInt32]] {
  Dictionary(uniqueKeysWithValues: c.tunnels.map { ($0.name, $0.inbound.map(\.spi) + [$0.outbound.spi]) })
}

/// The tunnels a change request may touch.
func names(_ r: ControlRequest, in c: Config) -> Set<String> {
  switch r {
  case .addTunnel(let t): [t.name]
  case .deleteTunnel(let name): [name]
  case .rekey(let name, _, _): [name]
  case .deleteSA(let spi): Set(c.tunnels.filter { $0.inbound.contains { $0.spi == spi } }.map(\.name))
  case .updateTunnel(let name, _, _): [name]
  case .list, .stats, .subscribe, .querySA, .listNames, .allocSPI, .releaseSPI: []
  }
}

func requireAnswer(_ e: ControlError) {
  let answer = e.answer
  require(!answer.contains("\n"), "an answer of several lines: \(answer)")
  guard let v = try? JSONValue.parse(answer), case .bool(false)? = v["ok"], case .string(let m)? = v["error"] else {
    require(false, "an error answer that is not {\"ok\":false,\"error\":…}: \(answer)")
    return
  }
  require(m == e.message && !m.isEmpty, "the answer's error text differs from the error")
}
