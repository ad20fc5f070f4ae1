// SPDX-License-Identifier: Apache-2.0
// The JSON parser: RFC 8259 values and escapes, strictness, error positions, limits, and no trap on garbage.
import Testing

@testable import Dataplane
@testable import Forwarding

@Suite struct JSONTests {
  private func parse(_ text: String, limits: JSONLimits = JSONLimits()) -> Result<JSONValue, JSONError> {
    Result { () throws(JSONError) in try JSONValue.parse(text, limits: limits) }
  }

  private func error(_ text: String, limits: JSONLimits = JSONLimits()) -> String? {
    if case .failure(let e) = parse(text, limits: limits) { return e.description }
    return nil
  }

  private func error(bytes: [UInt8]) -> String? {
    do {
      _ = try JSONValue.parse(bytes: bytes)
      return nil
    } catch {
      return error.description
    }
  }

  @Test func scalars() throws {
    #expect(try JSONValue.parse("null") == .null)
    #expect(try JSONValue.parse(" true ") == .bool(true))
    #expect(try JSONValue.parse("\n\tfalse\r\n") == .bool(false))
    #expect(try JSONValue.parse(#""abc""#) == .string("abc"))
    #expect(try JSONValue.parse(#""""#) == .string(""))
    #expect(try JSONValue.parse("[]") == .array([]))
    #expect(try JSONValue.parse("{}") == .object([]))
  }

  @Test(arguments: [
    "0", "-0", "1", "-1", "1.5", "-0.25", "1e10", "1E+10", "2.5e-3", "18446744073709551615",
    "123456789012345678901234567890",
  ])
  func numbersKeepTheirText(_ literal: String) throws {
    #expect(try JSONValue.parse(literal) == .number(literal))
    #expect(try JSONValue.parse("[\(literal)]") == .array([.number(literal)]))
  }

  @Test func integerValues() throws {
    #expect(try JSONValue.parse("18446744073709551615").integerValue == UInt64.max)
    #expect(try JSONValue.parse("18446744073709551616").integerValue == nil)
    #expect(try JSONValue.parse("0").integerValue == 0)
    #expect(try JSONValue.parse("-1").integerValue == nil)
    #expect(try JSONValue.parse("1.0").integerValue == nil)
    #expect(try JSONValue.parse("1e3").integerValue == nil)
    #expect(try JSONValue.parse(#""1""#).integerValue == nil)
  }

  @Test func escapes() throws {
    #expect(try JSONValue.parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
    #expect(try JSONValue.parse(#""\u0041\u00e9\u20AC""#) == .string("Aé€"))
    #expect(try JSONValue.parse(#""\u0000""#) == .string("\u{0}"))
    #expect(try JSONValue.parse(#""a\ud83d\ude00b""#) == .string("a😀b"))
    #expect(try JSONValue.parse(#""\uDBFF\uDFFF""#) == .string("\u{10FFFF}"))
    #expect(try JSONValue.parse("\"é😀\"") == .string("é😀"))
  }

  @Test func surrogateErrors() {
    #expect(error(#""\ud83d""#) == #"line 1, column 8: expected a \uDC00-\uDFFF low surrogate after \uD83D, got '"'"#)
    #expect(error(#""\ud83dx""#) == #"line 1, column 8: expected a \uDC00-\uDFFF low surrogate after \uD83D, got 'x'"#)
    #expect(
      error(#""\ud83d\u0041""#) == #"line 1, column 8: expected a \uDC00-\uDFFF low surrogate after \uD83D, got \u0041"#
    )
    #expect(
      error(#""\ude00""#)
        == #"line 1, column 2: expected a high surrogate \uD800-\uDBFF before a low one, got \uDE00 alone"#)
    #expect(error(#""\u12""#) == #"line 1, column 6: expected four hex digits after \u, got '"'"#)
    #expect(error(#""\x""#) == #"line 1, column 3: expected one of \" \\ \/ \b \f \n \r \t \uXXXX, got 'x'"#)
  }

  @Test func keyOrderIsKept() throws {
    let v = try JSONValue.parse(#"{"b": 1, "a": [true, null], "c": {"d": "e"}}"#)
    guard case .object(let members) = v else {
      Issue.record("not an object")
      return
    }
    #expect(members.map(\.key) == ["b", "a", "c"])
    #expect(v["a"] == .array([.bool(true), .null]))
    #expect(v["c"]?["d"] == .string("e"))
    #expect(v["z"] == nil)
    #expect(
      v == .object([("b", .number("1")), ("a", .array([.bool(true), .null])), ("c", .object([("d", .string("e"))]))]))
    #expect(
      v != .object([("a", .array([.bool(true), .null])), ("b", .number("1")), ("c", .object([("d", .string("e"))]))]))
  }

  @Test func duplicateKeys() {
    #expect(
      error("{\"spi\": 1,\n  \"spi\": 2}")
        == #"line 2, column 3: expected each key once per object, got "spi" again (first at line 1, column 2)"#)
    #expect(error(#"{"a": {"x": 1}, "b": {"x": 1}}"#) == nil)  // the same key in different objects is fine
  }

  /// Strictness: each of these is not RFC 8259 JSON, and the message says where and what.
  @Test(arguments: [
    ("", "line 1, column 1: expected a value (object, array, string, number, true, false or null), got end of input"),
    ("  ", "line 1, column 3: expected a value (object, array, string, number, true, false or null), got end of input"),
    ("[1,]", "line 1, column 4: expected a value after ',', got ']' (trailing commas are not allowed)"),
    (#"{"a":1,}"#, "line 1, column 8: expected a string key after ',', got '}' (trailing commas are not allowed)"),
    ("[1 2]", "line 1, column 4: expected ',' or ']' after an array element, got '2'"),
    (#"{"a" 1}"#, #"line 1, column 6: expected ':' after the key "a", got '1'"#),
    (#"{"a":1 "b":2}"#, #"line 1, column 8: expected ',' or '}' after an object member, got '"'"#),
    ("{a:1}", "line 1, column 2: expected a string key, got 'a'"),
    ("{'a':1}", "line 1, column 2: expected a string key, got '''"),
    (
      "01",
      "line 1, column 2: expected '.', 'e' or the end of the number after a leading 0, got '1' (leading zeros are not allowed)"
    ),
    ("-", "line 1, column 2: expected a digit, got end of input"),
    ("+1", "line 1, column 1: expected a value (object, array, string, number, true, false or null), got '+'"),
    (".5", "line 1, column 1: expected a value (object, array, string, number, true, false or null), got '.'"),
    ("1.", "line 1, column 3: expected a digit after '.', got end of input"),
    ("1e", "line 1, column 3: expected a digit in the exponent, got end of input"),
    ("1e+", "line 1, column 4: expected a digit in the exponent, got end of input"),
    ("NaN", "line 1, column 1: expected a value (object, array, string, number, true, false or null), got 'N'"),
    ("tru", "line 1, column 4: expected 'true', got end of input"),
    ("nul1", "line 1, column 4: expected 'null', got '1'"),
    ("truex", "line 1, column 5: expected end of input after the value, got 'x'"),
    ("1 2", "line 1, column 3: expected end of input after the value, got '2'"),
    ("[1] // c", "line 1, column 5: expected end of input after the value, got '/'"),
    ("\"abc", "line 1, column 5: expected '\"' to close the string begun at line 1, column 1, got end of input"),
    (
      "\"a\nb\"",
      "line 1, column 3: expected '\"' or more text in the string, got control character U+000A (control characters must be escaped)"
    ),
    (
      "[\n  1,\n  x]",
      "line 3, column 3: expected a value (object, array, string, number, true, false or null), got 'x'"
    ),
    ("[\"é\", x]", "line 1, column 7: expected a value (object, array, string, number, true, false or null), got 'x'"),
    ("\u{A0}1", "line 1, column 1: expected a value (object, array, string, number, true, false or null), got U+00A0"),
  ])
  func rejects(_ text: String, _ message: String) {
    #expect(error(text) == message)
  }

  @Test func invalidUTF8() {
    let q = UInt8(ascii: "\"")
    #expect(
      error(bytes: [q, 0xC0, 0x80, q])
        == "line 1, column 2: expected UTF-8 text in the string, got invalid UTF-8 byte 0xC0")
    #expect(error(bytes: [q, 0xED, 0xA0, 0x80, q]) != nil)  // an encoded surrogate
    #expect(error(bytes: [q, 0xF4, 0x90, 0x80, 0x80, q]) != nil)  // past U+10FFFF
    #expect(error(bytes: [q, 0xE2, 0x82, q]) != nil)  // truncated sequence
    #expect(error(bytes: [q, 0xFF, q]) != nil)
    #expect(
      error(bytes: [0xFF])
        == "line 1, column 1: expected a value (object, array, string, number, true, false or null), got invalid UTF-8 byte 0xFF"
    )
    #expect(error(bytes: [q, 0xE2, 0x82, 0xAC, q]) == nil)  // "€"
  }

  @Test func byteOrderMarkIsSkipped() throws {
    #expect(try JSONValue.parse(bytes: [0xEF, 0xBB, 0xBF] + Array("[1]".utf8)) == .array([.number("1")]))
    #expect(error(bytes: [0xEF, 0xBB, 0xBF] + Array("[x]".utf8))?.hasPrefix("line 1, column 2:") == true)
  }

  @Test func depthLimit() {
    let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
    #expect(error(ok) == nil)
    let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
    #expect(error(deep) == "line 1, column 65: expected at most 64 levels of nesting, got a deeper array")
    let objects = String(repeating: #"{"a":"#, count: 3) + "1" + String(repeating: "}", count: 3)
    #expect(
      error(objects, limits: JSONLimits(maxDepth: 2))
        == "line 1, column 11: expected at most 2 levels of nesting, got a deeper object")
    // Far past any limit: an error, never a stack overflow (the limit is clamped).
    let hostile = String(repeating: "[", count: 200_000)
    #expect(error(hostile, limits: JSONLimits(maxDepth: .max))?.contains("levels of nesting") == true)
  }

  @Test func sizeLimit() {
    #expect(
      error("[1, 2, 3]", limits: JSONLimits(maxBytes: 8)) == "line 1, column 1: expected at most 8 bytes of JSON, got 9"
    )
    #expect(error("[1, 2, 3]", limits: JSONLimits(maxBytes: 9)) == nil)
  }

  @Test func serializationRoundTrips() throws {
    let text = #"{"s":"a\"b\\c\n\u0001é😀","n":-1.5e3,"a":[true,false,null,{}],"o":{"k":[]}}"#
    let v = try JSONValue.parse(text)
    #expect(v.jsonText == text)
    #expect(try JSONValue.parse(v.jsonText) == v)
  }

  @Test func quotedForMessages() {
    #expect(JSONValue.quoted("ab") == #""ab""#)
    #expect(JSONValue.quoted("a\nb\u{202E}c") == #""a\nb\u202ec""#)
    #expect(JSONValue.quoted("abcdef", limit: 3) == "\"abc…\"")
  }

  /// Random bytes and random mutations of a valid document: every outcome is a value or an error.
  @Test func garbageNeverTraps() {
    var rng = JSONFuzzRandom(seed: 0x5EED)
    let seed = Array(#"{"a": [1, -2.5e3, "x\u00e9\ud83d\ude00", true, null], "b": {"c": "d"}}"#.utf8)
    let alphabet = Array(#"{}[]":,-+.eE0123456789\u tfnrl "#.utf8) + [0x00, 0x0A, 0x80, 0xC3, 0xED, 0xF0, 0xFF]
    var outcomes = (values: 0, errors: 0)
    for round in 0..<3000 {
      var bytes: [UInt8]
      if round % 3 == 0 {
        bytes = (0..<Int(rng.next() % 64)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
      } else {
        bytes = seed
        for _ in 0..<(1 + Int(rng.next() % 4)) where !bytes.isEmpty {
          let i = Int(rng.next() % UInt64(bytes.count))
          switch rng.next() % 3 {
          case 0: bytes[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
          case 1: bytes.remove(at: i)
          default: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: i)
          }
        }
      }
      do {
        let v = try JSONValue.parse(bytes: bytes)
        #expect(try JSONValue.parse(v.jsonText) == v)
        outcomes.values += 1
      } catch {
        #expect(error.line >= 1 && error.column >= 1 && !error.message.contains("\n"))
        outcomes.errors += 1
      }
    }
    #expect(outcomes.values > 0 && outcomes.errors > 0)
  }
}

/// A small deterministic generator (SplitMix64), so that failures reproduce.
struct JSONFuzzRandom {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
