// SPDX-License-Identifier: Apache-2.0
// A strict RFC 8259 JSON parser over UTF-8 bytes that reports line:column and never traps.

extension JSONValue {
  /// Parses one JSON text (RFC 8259): any value, surrounded by optional whitespace; a leading
  /// UTF-8 byte order mark is skipped. Strict: no trailing commas, comments, leading zeros, lone
  /// surrogates, unescaped control characters, invalid UTF-8 or duplicate keys.
  /// - Parameters:
  ///   - text: the JSON text.
  ///   - limits: nesting depth and size bounds.
  /// - Returns: the value.
  /// - Throws: ``JSONError`` with the line, column and what was expected.
  ///
  /// Pure and reentrant; safe on any thread.
  public static func parse(_ text: String, limits: JSONLimits = JSONLimits()) throws(JSONError) -> JSONValue {
    try parse(bytes: Array(text.utf8), limits: limits)
  }

  /// Parses one JSON text given as UTF-8 bytes (as read from a file or a socket); see ``parse(_:limits:)``.
  /// - Parameters:
  ///   - bytes: the JSON text; invalid UTF-8 is an error, never replaced.
  ///   - limits: nesting depth and size bounds.
  /// - Returns: the value.
  /// - Throws: ``JSONError``.
  public static func parse(bytes: [UInt8], limits: JSONLimits = JSONLimits()) throws(JSONError) -> JSONValue {
    var parser = JSONParser(bytes: bytes, maxDepth: min(max(limits.maxDepth, 1), JSONLimits.depthCeiling))
    guard bytes.count <= max(limits.maxBytes, 0) else {
      throw JSONError(
        line: 1, column: 1, message: "expected at most \(limits.maxBytes) bytes of JSON, got \(bytes.count)")
    }
    return try parser.parseDocument()
  }
}

/// Recursive descent over a byte array. Every read is bounds-checked through ``peek``; recursion is
/// bounded by `maxDepth`.
struct JSONParser {
  let bytes: [UInt8]
  let maxDepth: Int
  var index = 0

  init(bytes: [UInt8], maxDepth: Int) {
    self.bytes = bytes
    self.maxDepth = maxDepth
  }

  /// The byte at the cursor, or nil at the end.
  private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

  mutating func parseDocument() throws(JSONError) -> JSONValue {
    // RFC 8259 §8.1: a parser may ignore a byte order mark.
    if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { index = 3 }
    skipWhitespace()
    let value = try parseValue(depth: 0)
    skipWhitespace()
    guard index == bytes.count else { throw failure("end of input after the value") }
    return value
  }

  // MARK: Values

  private mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
    guard let b = peek else {
      throw failure("a value (object, array, string, number, true, false or null)")
    }
    switch b {
    case UInt8(ascii: "{"): return try parseObject(depth: depth)
    case UInt8(ascii: "["): return try parseArray(depth: depth)
    case UInt8(ascii: "\""): return .string(try parseString())
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
    case UInt8(ascii: "t"):
      try literal("true")
      return .bool(true)
    case UInt8(ascii: "f"):
      try literal("false")
      return .bool(false)
    case UInt8(ascii: "n"):
      try literal("null")
      return .null
    default:
      throw failure("a value (object, array, string, number, true, false or null)")
    }
  }

  private mutating func literal(_ word: String) throws(JSONError) {
    for c in word.utf8 {
      guard peek == c else { throw failure("'\(word)'") }
      index += 1
    }
  }

  private mutating func parseArray(depth: Int) throws(JSONError) -> JSONValue {
    guard depth < maxDepth else { throw failure("at most \(maxDepth) levels of nesting", got: "a deeper array") }
    index += 1  // '['
    skipWhitespace()
    var elements: [JSONValue] = []
    if peek == UInt8(ascii: "]") {
      index += 1
      return .array(elements)
    }
    while true {
      elements.append(try parseValue(depth: depth + 1))
      skipWhitespace()
      switch peek {
      case UInt8(ascii: ","):
        index += 1
        skipWhitespace()
        if peek == UInt8(ascii: "]") {
          throw failure("a value after ','", got: "']' (trailing commas are not allowed)")
        }
      case UInt8(ascii: "]"):
        index += 1
        return .array(elements)
      default:
        throw failure("',' or ']' after an array element")
      }
    }
  }

  private mutating func parseObject(depth: Int) throws(JSONError) -> JSONValue {
    guard depth < maxDepth else { throw failure("at most \(maxDepth) levels of nesting", got: "a deeper object") }
    index += 1  // '{'
    skipWhitespace()
    var members: [(key: String, value: JSONValue)] = []
    var seen: [String: Int] = [:]  // key -> offset of its first occurrence
    if peek == UInt8(ascii: "}") {
      index += 1
      return .object(members)
    }
    while true {
      guard peek == UInt8(ascii: "\"") else {
        if peek == UInt8(ascii: "}") && !members.isEmpty {
          throw failure("a string key after ','", got: "'}' (trailing commas are not allowed)")
        }
        throw failure("a string key")
      }
      let keyOffset = index
      let key = try parseString()
      if let first = seen[key] {
        let (line, column) = position(of: first)
        throw JSONError(
          at: position(of: keyOffset),
          message:
            "expected each key once per object, got \(quoted(key)) again (first at line \(line), column \(column))"
        )
      }
      seen[key] = keyOffset
      skipWhitespace()
      guard peek == UInt8(ascii: ":") else { throw failure("':' after the key \(quoted(key))") }
      index += 1
      skipWhitespace()
      members.append((key, try parseValue(depth: depth + 1)))
      skipWhitespace()
      switch peek {
      case UInt8(ascii: ","):
        index += 1
        skipWhitespace()
      case UInt8(ascii: "}"):
        index += 1
        return .object(members)
      default:
        throw failure("',' or '}' after an object member")
      }
    }
  }

  /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`, kept as text.
  private mutating func parseNumber() throws(JSONError) -> JSONValue {
    let start = index
    if peek == UInt8(ascii: "-") { index += 1 }
    if peek == UInt8(ascii: "0") {
      index += 1
      if let b = peek, isDigit(b) {
        throw failure(
          "'.', 'e' or the end of the number after a leading 0",
          got: "'\(Character(Unicode.Scalar(b)))' (leading zeros are not allowed)")
      }
    } else {
      guard let b = peek, isDigit(b) else { throw failure("a digit") }
      skipDigits()
    }
    if peek == UInt8(ascii: ".") {
      index += 1
      guard let b = peek, isDigit(b) else { throw failure("a digit after '.'") }
      skipDigits()
    }
    if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
      index += 1
      if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
      guard let b = peek, isDigit(b) else { throw failure("a digit in the exponent") }
      skipDigits()
    }
    return .number(String(decoding: bytes[start..<index], as: UTF8.self))
  }

  // MARK: Strings

  /// A string at the cursor (which is on its opening quote): escapes resolved, UTF-8 validated.
  private mutating func parseString() throws(JSONError) -> String {
    let open = index
    index += 1
    var out: [UInt8] = []
    var run = index  // start of the bytes not yet copied to `out`
    while true {
      guard let b = peek else {
        let (line, column) = position(of: open)
        throw failure("'\"' to close the string begun at line \(line), column \(column)")
      }
      switch b {
      case UInt8(ascii: "\""):
        if out.isEmpty {
          let s = String(decoding: bytes[run..<index], as: UTF8.self)
          index += 1
          return s
        }
        out.append(contentsOf: bytes[run..<index])
        index += 1
        return String(decoding: out, as: UTF8.self)
      case UInt8(ascii: "\\"):
        out.append(contentsOf: bytes[run..<index])
        try parseEscape(into: &out)
        run = index
      case 0..<0x20:
        throw failure(
          "'\"' or more text in the string", got: "\(describe(at: index)) (control characters must be escaped)")
      case 0x20..<0x80:
        index += 1
      default:
        guard let (_, length) = decodeScalar(at: index) else { throw failure("UTF-8 text in the string") }
        index += length
      }
    }
  }

  /// An escape at the cursor (on the backslash); appends its UTF-8 to `out`. RFC 8259 §7.
  private mutating func parseEscape(into out: inout [UInt8]) throws(JSONError) {
    index += 1
    guard let e = peek else { throw failure("an escape character after '\\'") }
    let simple: UInt8?
    switch e {
    case UInt8(ascii: "\""): simple = UInt8(ascii: "\"")
    case UInt8(ascii: "\\"): simple = UInt8(ascii: "\\")
    case UInt8(ascii: "/"): simple = UInt8(ascii: "/")
    case UInt8(ascii: "b"): simple = 0x08
    case UInt8(ascii: "f"): simple = 0x0C
    case UInt8(ascii: "n"): simple = 0x0A
    case UInt8(ascii: "r"): simple = 0x0D
    case UInt8(ascii: "t"): simple = 0x09
    case UInt8(ascii: "u"): simple = nil
    default: throw failure("one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX")
    }
    if let s = simple {
      out.append(s)
      index += 1
      return
    }
    index += 1
    let unit = try hex4()
    var scalar = UInt32(unit)
    switch unit {
    case 0xD800...0xDBFF:
      // A high surrogate must be followed by an escaped low surrogate (RFC 8259 §7).
      guard peek == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
        throw failure("a \\uDC00-\\uDFFF low surrogate after \\u\(hex(unit))")
      }
      let lowStart = index
      index += 2
      let low = try hex4()
      guard (0xDC00...0xDFFF).contains(low) else {
        index = lowStart
        throw failure("a \\uDC00-\\uDFFF low surrogate after \\u\(hex(unit))", got: "\\u\(hex(low))")
      }
      scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
    case 0xDC00...0xDFFF:
      index -= 6
      throw failure("a high surrogate \\uD800-\\uDBFF before a low one", got: "\\u\(hex(unit)) alone")
    default:
      break
    }
    appendUTF8(scalar, to: &out)
  }

  /// Four hex digits at the cursor.
  private mutating func hex4() throws(JSONError) -> UInt16 {
    var v: UInt16 = 0
    for _ in 0..<4 {
      guard let b = peek, let d = hexDigit(b) else { throw failure("four hex digits after \\u") }
      v = v << 4 | UInt16(d)
      index += 1
    }
    return v
  }

  // MARK: Bytes

  private mutating func skipWhitespace() {
    while let b = peek, b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { index += 1 }
  }

  private mutating func skipDigits() {
    while let b = peek, isDigit(b) { index += 1 }
  }

  private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

  private func hexDigit(_ b: UInt8) -> UInt8? {
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
    default: nil
    }
  }

  private func hex(_ v: UInt16) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return String(repeating: "0", count: 4 - s.count) + s
  }

  // MARK: Errors

  /// An error at the cursor: `expected <expected>, got <what is at the cursor>`.
  private func failure(_ expected: String, got: String? = nil) -> JSONError {
    JSONError(at: position(of: index), message: "expected \(expected), got \(got ?? describe(at: index))")
  }

  /// What is at offset `i`, for a message: `'x'`, `end of input`, `U+000A`, `invalid UTF-8 byte 0xFF`.
  private func describe(at i: Int) -> String {
    guard i < bytes.count else { return "end of input" }
    let b = bytes[i]
    switch b {
    case 0x21..<0x7F: return "'\(Character(Unicode.Scalar(b)))'"
    case 0x20: return "' '"
    case 0..<0x20, 0x7F: return "control character U+00\(hex(UInt16(b)).suffix(2))"
    default:
      guard let (scalar, _) = decodeScalar(at: i) else {
        return "invalid UTF-8 byte 0x\(hex(UInt16(b)).suffix(2))"
      }
      let h = String(scalar, radix: 16, uppercase: true)
      return "U+" + String(repeating: "0", count: max(0, 4 - h.count)) + h
    }
  }

  /// 1-based line and column (in Unicode scalars) of byte offset `offset`.
  func position(of offset: Int) -> (line: Int, column: Int) {
    var line = 1
    var column = 1
    let hasBOM = bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF
    let end = min(max(offset, 0), bytes.count)
    for b in bytes[min(hasBOM ? 3 : 0, end)..<end] {
      if b == 0x0A {
        line += 1
        column = 1
      } else if b & 0xC0 != 0x80 {
        column += 1
      }
    }
    return (line, column)
  }

  /// A string for a message: quoted, escaped and cut short (see ``JSONValue/quoted(_:limit:)``).
  private func quoted(_ s: String) -> String { JSONValue.quoted(s) }
}

extension JSONError {
  init(at position: (line: Int, column: Int), message: String) {
    self.init(line: position.line, column: position.column, message: message)
  }
}
