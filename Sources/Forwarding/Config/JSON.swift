// SPDX-License-Identifier: Apache-2.0
// JSON values (RFC 8259) for the configuration file and the control socket: the model, its limits and errors.

/// A parsed JSON value (RFC 8259).
///
/// Numbers keep their literal text (`"18446744073709551615"`, `"1.5e3"`), so 64-bit integers such as
/// sequence numbers stay exact; ``integerValue`` reads a non-negative integer out of one. Objects keep
/// their members in document order; a duplicate key is a parse error, so each key appears once.
/// Two numbers are equal when their literal text is (`1.0` and `1` are different values).
///
/// A plain value: `Sendable`, no shared state.
public enum JSONValue: Sendable, Equatable {
  /// `null`.
  case null
  /// `true` or `false`.
  case bool(Bool)
  /// A number, as its literal text (RFC 8259 §6 grammar, already checked).
  case number(String)
  /// A string, with escapes resolved.
  case string(String)
  /// An array.
  case array([JSONValue])
  /// An object: members in document order, keys unique.
  case object([(key: String, value: JSONValue)])

  /// Compares two values structurally; objects compare member by member, in order.
  public static func == (a: JSONValue, b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.number(let x), .number(let y)): return x == y
    case (.string(let x), .string(let y)): return x == y
    case (.array(let x), .array(let y)): return x == y
    case (.object(let x), .object(let y)):
      guard x.count == y.count else { return false }
      for (m, n) in zip(x, y) where m.key != n.key || m.value != n.value { return false }
      return true
    default: return false
    }
  }

  /// The member named `key` of an object.
  /// - Parameter key: the member name.
  /// - Returns: its value, or nil if this is not an object or has no such member.
  public subscript(key: String) -> JSONValue? {
    guard case .object(let members) = self else { return nil }
    return members.first { $0.key == key }?.value
  }

  /// The value of a number literal that is a non-negative integer (no sign, fraction or exponent).
  /// Returns nil for anything else, including integers above `UInt64.max`.
  public var integerValue: UInt64? {
    guard case .number(let text) = self else { return nil }
    return JSONValue.unsignedInteger(text)
  }

  /// What kind of value this is, with an article, for messages: `null`, `a boolean`, `a number`,
  /// `a string`, `an array`, `an object`.
  public var kind: String {
    switch self {
    case .null: "null"
    case .bool: "a boolean"
    case .number: "a number"
    case .string: "a string"
    case .array: "an array"
    case .object: "an object"
    }
  }

  /// Reads decimal digits into a `UInt64`; nil on any other character, an empty text or overflow.
  static func unsignedInteger(_ text: String) -> UInt64? {
    guard !text.isEmpty, text.utf8.count <= 40 else { return nil }
    var value: UInt64 = 0
    for c in text.utf8 {
      guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
      let (times10, o1) = value.multipliedReportingOverflow(by: 10)
      let (sum, o2) = times10.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
      guard !o1, !o2 else { return nil }
      value = sum
    }
    return value
  }
}

/// Bounds on what the parser accepts, so that hostile input can neither exhaust the stack nor memory.
public struct JSONLimits: Sendable, Equatable {
  /// The deepest nesting of arrays and objects accepted (clamped to 1 ... ``JSONLimits/depthCeiling``).
  public var maxDepth: Int
  /// The largest input accepted, in bytes.
  public var maxBytes: Int

  /// The largest `maxDepth` honoured: the parser recurses once per level and must stay well inside
  /// the smallest thread stack it may run on.
  public static let depthCeiling = 256

  /// Creates limits.
  /// - Parameters:
  ///   - maxDepth: nesting levels of arrays and objects (default 64).
  ///   - maxBytes: input size in bytes (default 4 MiB: about ten thousand tunnels). Parsed values
  ///     take up to some tens of times their text, so this also bounds memory.
  public init(maxDepth: Int = 64, maxBytes: Int = 4 << 20) {
    self.maxDepth = maxDepth
    self.maxBytes = maxBytes
  }
}

/// Why a text is not acceptable JSON, and where (1-based line and column; columns count Unicode
/// scalars, as editors do).
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
  /// 1-based line of the offending character.
  public var line: Int
  /// 1-based column of the offending character, in Unicode scalars.
  public var column: Int
  /// What was expected and what was found (`expected ',' or '}' after an object member, got '"'`).
  public var message: String

  /// Creates an error.
  /// - Parameters:
  ///   - line: 1-based line.
  ///   - column: 1-based column.
  ///   - message: `expected …, got …`.
  public init(line: Int, column: Int, message: String) {
    self.line = line
    self.column = column
    self.message = message
  }

  /// `line L, column C: expected …, got …` on one line.
  public var description: String { "line \(line), column \(column): \(message)" }
}
