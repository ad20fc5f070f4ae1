// SPDX-License-Identifier: Apache-2.0
// JSON values back to text: compact serialization (control socket answers) and quoting for messages.

extension JSONValue {
  /// An integer as a number value.
  public static func integer(_ v: some BinaryInteger) -> JSONValue { .number(String(v)) }

  /// Members as they follow others inside an object: `,"key":value` each, in order (the text of
  /// answer members built apart, for logs and tests).
  public static func membersText(_ members: [(key: String, value: JSONValue)]) -> String {
    var out: [UInt8] = []
    for m in members {
      out.append(UInt8(ascii: ","))
      writeString(m.key, to: &out, escapingFormat: false)
      out.append(UInt8(ascii: ":"))
      m.value.write(to: &out)
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// The value as compact JSON text on one line (no insignificant whitespace), members in order.
  /// Strings escape `"`, `\` and control characters; other characters stay UTF-8.
  /// Numbers are written as their literal text.
  public var jsonText: String {
    var out: [UInt8] = []
    write(to: &out)
    return String(decoding: out, as: UTF8.self)
  }

  /// Appends the text as UTF-8 (bytes, not String appends: answers of a million tunnels are built
  /// from many short pieces).
  private func write(to out: inout [UInt8]) {
    switch self {
    case .null: out.append(contentsOf: "null".utf8)
    case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
    case .number(let n): JSONValue.append(n, to: &out)
    case .string(let s): JSONValue.writeString(s, to: &out, escapingFormat: false)
    case .array(let elements):
      out.append(UInt8(ascii: "["))
      for (i, e) in elements.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        e.write(to: &out)
      }
      out.append(UInt8(ascii: "]"))
    case .object(let members):
      out.append(UInt8(ascii: "{"))
      for (i, m) in members.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        JSONValue.writeString(m.key, to: &out, escapingFormat: false)
        out.append(UInt8(ascii: ":"))
        m.value.write(to: &out)
      }
      out.append(UInt8(ascii: "}"))
    }
  }

  /// Appends a string's UTF-8 bytes.
  @inline(__always)
  private static func append(_ s: String, to out: inout [UInt8]) {
    var s = s
    s.withUTF8 { out.append(contentsOf: $0) }
  }

  /// A string as a JSON string literal for a one-line message: quoted, escaped, and cut to `limit`
  /// characters with `…` (so that a hostile value cannot flood a log line). Besides the control
  /// characters, escapes the line and paragraph separators and the bidirectional overrides, so the
  /// line reads as it is (Trojan Source, CVE-2021-42574).
  /// - Parameters:
  ///   - s: the string.
  ///   - limit: characters kept before `…`.
  /// - Returns: `"text"`.
  public static func quoted(_ s: String, limit: Int = 48) -> String {
    var bytes: [UInt8] = []
    let cut = s.unicodeScalars.count > limit
    let kept = cut ? String(String.UnicodeScalarView(s.unicodeScalars.prefix(max(limit, 0)))) : s
    writeString(kept, to: &bytes, escapingFormat: true)
    var out = String(decoding: bytes, as: UTF8.self)
    if cut { out.insert(contentsOf: "…", at: out.index(before: out.endIndex)) }
    return out
  }

  private static func writeString(_ s: String, to out: inout [UInt8], escapingFormat: Bool) {
    out.append(UInt8(ascii: "\""))
    var s = s
    // Most strings (keys, names, addresses) are printable ASCII with nothing to escape: copied whole.
    let plain = s.withUTF8 { $0.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C } }
    if plain {
      s.withUTF8 { out.append(contentsOf: $0) }
    } else {
      for u in s.unicodeScalars {
        switch u.value {
        case 0x22: out.append(contentsOf: "\\\"".utf8)
        case 0x5C: out.append(contentsOf: "\\\\".utf8)
        case 0x0A: out.append(contentsOf: "\\n".utf8)
        case 0x0D: out.append(contentsOf: "\\r".utf8)
        case 0x09: out.append(contentsOf: "\\t".utf8)
        case 0x08: out.append(contentsOf: "\\b".utf8)
        case 0x0C: out.append(contentsOf: "\\f".utf8)
        case 0..<0x20: out.append(contentsOf: unicodeEscape(u.value).utf8)
        case 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C:
          if escapingFormat {
            out.append(contentsOf: unicodeEscape(u.value).utf8)
          } else {
            UTF8.encode(u) { out.append($0) }
          }
        default: UTF8.encode(u) { out.append($0) }
        }
      }
    }
    out.append(UInt8(ascii: "\""))
  }

  private static func unicodeEscape(_ v: UInt32) -> String {
    let h = String(v, radix: 16)
    return "\\u" + String(repeating: "0", count: max(0, 4 - h.count)) + h
  }
}
