// SPDX-License-Identifier: Apache-2.0
// Configuration problems, one line each, and the object reader that finds unknown and misspelt fields.

/// Every problem found in a configuration, in document order, one line each:
/// `<path>: expected <what was expected>, got <what was found>`, for example
/// `tunnels[1].inbound[0].key: expected 20 bytes (16-byte key + 4-byte salt) for aes128gcm16, got 16`.
/// A JSON syntax error is a single problem whose path is its position (`line 3, column 7: …`).
/// Lines never contain key material or raw control characters.
public struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible {
  /// The problems, one line each.
  public var problems: [String]

  /// Creates the error from its lines.
  /// - Parameter problems: one line per problem.
  public init(problems: [String]) {
    self.problems = problems
  }

  /// The problems joined by newlines.
  public var description: String { problems.joined(separator: "\n") }
}

/// Collects problems while parsing; parsing goes on after each one so that all are reported.
package struct Problems {
  package var lines: [String] = []

  package init() {}

  package var isEmpty: Bool { lines.isEmpty }

  /// Adds `<path>: expected <expected>, got <got>`.
  package mutating func add(_ path: String, expected: String, got: String) {
    lines.append("\(path): expected \(expected), got \(got)")
  }

  /// Adds `<path>: <message>` for the few problems that have no "expected" shape (unknown fields).
  mutating func add(_ path: String, _ message: String) {
    lines.append("\(path): \(message)")
  }
}

/// Paths of the form `tunnels[1].inbound[0].key`.
enum ConfigPath {
  /// `path.key`, or `path["odd key"]` when the key is not a plain identifier; `key` alone at the root.
  static func member(_ path: String, _ key: String) -> String {
    let plain =
      !key.isEmpty && key.utf8.count <= 64
      && key.utf8.allSatisfy { c in
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
          || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
      }
    if !plain { return (path.isEmpty ? "config" : path) + "[\(JSONValue.quoted(key))]" }
    return path.isEmpty ? key : path + "." + key
  }

  /// `path[i]`.
  static func element(_ path: String, _ i: Int) -> String { (path.isEmpty ? "config" : path) + "[\(i)]" }
}

/// How a value reads in a message: `null`, `true`, `1400`, `"espd0"`, `an array`, `an object`.
/// Long numbers and strings are cut short; strings are escaped.
package func describe(_ value: JSONValue?) -> String {
  switch value {
  case nil: return "nothing"
  case .null: return "null"
  case .bool(let b): return b ? "true" : "false"
  case .number(let n): return n.utf8.count > 40 ? String(n.prefix(40)) + "…" : n
  case .string(let s): return JSONValue.quoted(s)
  case .array(let a): return a.isEmpty ? "an empty array" : "an array"
  case .object: return "an object"
  }
}

/// A JSON object read field by field. JSON `null` reads as absent.
struct FieldReader {
  let path: String
  let members: [(key: String, value: JSONValue)]

  /// Reads `value` as an object, or reports `<path>: expected <what>, got …` and returns nil.
  init?(_ value: JSONValue, path: String, what: String, problems: inout Problems) {
    guard case .object(let m) = value else {
      problems.add(path.isEmpty ? "config" : path, expected: what, got: describe(value))
      return nil
    }
    self.path = path
    self.members = m
  }

  /// The value of `key`, or nil when absent or `null`.
  subscript(key: String) -> JSONValue? {
    guard let v = members.first(where: { $0.key == key })?.value, v != .null else { return nil }
    return v
  }

  /// The path of member `key`.
  func path(_ key: String) -> String { ConfigPath.member(path, key) }

  /// Reports each member not in `allowed`: `<path>.<key>: unknown field (did you mean "…"?)`.
  /// - Parameters:
  ///   - allowed: the field names this object takes.
  ///   - misplaced: fields that belong elsewhere, with the reason given instead of a guess.
  ///   - problems: where to report.
  func rejectUnknown(allowed: [String], misplaced: [String: String] = [:], problems: inout Problems) {
    for m in members where !allowed.contains(m.key) {
      if let why = misplaced[m.key] {
        problems.add(path(m.key), why)
      } else if let guess = Suggestion.closest(to: m.key, among: allowed) {
        problems.add(path(m.key), "unknown field (did you mean \"\(guess)\"?)")
      } else {
        problems.add(path(m.key), "unknown field (expected one of: \(allowed.joined(separator: ", ")))")
      }
    }
  }
}

/// "Did you mean" guesses for misspelt names.
enum Suggestion {
  /// The candidate closest to `word`: equal ignoring case, `-` and `_`, or within a small edit
  /// distance (1 for short names, 2 from five characters on, 3 from ten).
  /// - Returns: the candidate, or nil if none is close.
  static func closest(to word: String, among candidates: [String]) -> String? {
    guard word.utf8.count <= 64 else { return nil }
    let w = normalized(word)
    if let exact = candidates.first(where: { normalized($0) == w }) { return exact }
    let budget = w.count >= 10 ? 3 : w.count >= 5 ? 2 : 1
    var best: (String, Int)? = nil
    for c in candidates {
      let d = distance(w, normalized(c))
      if d <= budget && d < (best?.1 ?? Int.max) { best = (c, d) }
    }
    return best?.0
  }

  private static func normalized(_ s: String) -> [UInt8] {
    s.utf8.compactMap { c in
      c == UInt8(ascii: "_") || c == UInt8(ascii: "-") ? nil : (c >= 65 && c <= 90 ? c + 32 : c)
    }
  }

  /// Edit distance with adjacent transpositions (optimal string alignment): `nmae` is one edit
  /// from `name`. O(|a|·|b|) on short names.
  private static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    let width = b.count + 1
    var d = [Int](repeating: 0, count: (a.count + 1) * width)
    for i in 0...a.count { d[i * width] = i }
    for j in 0...b.count { d[j] = j }
    for i in 1...a.count {
      for j in 1...b.count {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        var v = min(d[(i - 1) * width + j] + 1, d[i * width + j - 1] + 1, d[(i - 1) * width + j - 1] + cost)
        if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
          v = min(v, d[(i - 2) * width + j - 2] + 1)
        }
        d[i * width + j] = v
      }
    }
    return d[a.count * width + b.count]
  }
}
