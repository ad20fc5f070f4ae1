// SPDX-License-Identifier: Apache-2.0
// The configuration parser on any bytes (what `espd check` and `espd run` read).
// Invariants: no trap; a refusal is at least one problem, each one non-empty line; a configuration
// that is accepted validates again unchanged, and the dataplane can build every SA in it (whatever
// `check` passes, `run` can start).
import Dataplane
import Forwarding
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: size > 0 ? data : nil, count: size))
  switch ConfigParser.parse(bytes: bytes) {
  case .failure(let e):
    require(!e.problems.isEmpty, "a refused configuration without a problem")
    for line in e.problems {
      require(!line.isEmpty && !line.contains("\n") && !line.contains("\r"), "a problem that is not one line: \(line)")
    }
  case .success(let config):
    guard case .success(let again) = ConfigParser.validate(config) else {
      require(false, "an accepted configuration fails validation")
      return 0
    }
    require(again.tunnels.count == config.tunnels.count, "validation changed the tunnels")
    do {
      _ = try LookupTables(config: config)
    } catch {
      require(false, "an accepted configuration cannot be built: \(error)")
    }
  }
  return 0
}
