// SPDX-License-Identifier: Apache-2.0
// The control protocol: each input line is a request to a gateway whose configuration carries
// over from line to line, as on one connection (parse, apply, then build the SA table the way the
// control plane installs it, carrying state over from the table before).
// Invariants: no trap; every refusal is an answer that is valid JSON `{"ok":false,"error":"…"}` of
// one line; a refused change leaves the configuration as it was; every accepted change validates
// as a whole and can be built; a read-only request changes nothing.
import Dataplane
import FuzzSupport

let base = FuzzGateway.config()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControl(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = UnsafeBufferPointer(start: size > 0 ? data : nil, count: size)
  var config = base
  var table = try! SATable(config: config)
  for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: true).prefix(16) {
    switch ControlRequest.parse(Array(line)) {
    case .failure(let e):
      requireAnswer(e)
    case .success(let request):
      let tunnelsBefore = config.tunnels.map(\.name)
      switch ControlState.apply(request, to: config) {
      case .failure(let e):
        requireAnswer(e)
        require(request.isChange, "a read-only request was refused: \(e)")
        require(config.tunnels.map(\.name) == tunnelsBefore, "a refused change changed the tunnels")
      case .success(let new):
        if !request.isChange {
          require(new.tunnels.map(\.name) == tunnelsBefore, "a read-only request changed the tunnels")
          continue
        }
        guard case .success = ConfigParser.validate(new) else {
          require(false, "an accepted change leaves a configuration that does not validate")
          return 0
        }
        do {
          table = try SATable(config: new, previous: (table, config))
        } catch {
          require(false, "an accepted change cannot be built: \(error)")
        }
        config = new
      }
    }
  }
  return 0
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
