// SPDX-License-Identifier: Apache-2.0
// What the control-socket commands share: `--control`, reading a JSON body, one request and its answer.
import ArgumentParser
import Dataplane
import Forwarding

/// `--control PATH`.
struct ControlOptions: ParsableArguments {
  @Option(name: .long, help: "The control socket of the running espd.")
  var control: String = "/run/espd/control.sock"
}

enum ControlCall {
  /// The request `{"op":op,…}` with `members` after the operation.
  static func request(_ op: String, _ members: [(key: String, value: JSONValue)] = []) -> JSONValue {
    .object([("op", .string(op))] + members)
  }

  /// Sends one request and returns the answer object when it says `"ok":true`. Prints the error
  /// and exits 1 when espd cannot be reached, 2 when it refused the request.
  static func run(_ request: JSONValue, control: String) throws -> JSONValue {
    let answer: String
    do {
      let client = try ControlClient(path: control)
      answer = try client.request(request.jsonText)
    } catch {
      printError("espd: \(error)")
      throw ExitCode(1)
    }
    guard let value = try? JSONValue.parse(answer), case .bool(let ok)? = value["ok"] else {
      printError("espd: unexpected answer from the control socket: \(answer.prefix(200))")
      throw ExitCode(1)
    }
    guard ok else {
      if case .string(let e)? = value["error"] { printError("espd: \(e)") } else { printError("espd: \(answer)") }
      throw ExitCode(2)
    }
    return value
  }

  /// Reads a JSON object from a file, or standard input for `-`, as one line of JSON text.
  static func readObject(_ path: String, what: String) throws -> JSONValue {
    let bytes: [UInt8]
    switch FileIO.read(path == "-" ? "/dev/stdin" : path, limit: 1 << 20) {
    case .success(let b): bytes = b
    case .failure(let e):
      printError("espd: \(e)")
      throw ExitCode(2)
    }
    do {
      let v = try JSONValue.parse(bytes: bytes)
      guard case .object = v else {
        printError("espd: \(path == "-" ? "standard input" : path): expected \(what) (a JSON object), got \(v.kind)")
        throw ExitCode(2)
      }
      return v
    } catch let e as JSONError {
      printError("espd: \(path == "-" ? "standard input" : path): \(e)")
      throw ExitCode(2)
    }
  }
}
