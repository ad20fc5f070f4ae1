// SPDX-License-Identifier: Apache-2.0
// JSON values back to text: compact serialization (control socket answers) and quoting for messages.

extension JSONValue {
  /// An integer as a number value.
  public static func integer(_ v: some BinaryInteger) -> JSONValue { .number(String(v)) }

  /// Members as they follow others inside an object: `,"key":value` each, in order (the text of
  /// answer members built apart, for logs and tests).
  public static func membersText(_ members: [(key: String, value: JSONValue)]) -> String {
    var out = ""
    for m in members {
      out += ","
      writeString(m.key, to: &out, escapingFormat: false)
      out += ":"
      m.value.write(to: &out)
    }
    return out
  }

  /// The value as compact JSON text on one line (no insignificant whitespace), members in order.
  /// Strings escape `"`, `\` and control characters; other characters stay UTF-8.
  /// Numbers are written as their literal text.
  public var jsonText: String {
    var out = ""
    write(to: &out)
    return out
  }

  private func write(to out: inout String) {
    switch self {
    case .null: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .number(let n): out += n
    case .string(let s): JSONValue.writeString(s, to: &out, escapingFormat: false)
    case .array(let elements):
      out += "["
      for (i, e) in elements.enumerated() {
        if i > 0 { out += "," }
        e.write(to: &out)
      }
      out += "]"
    case .object(let members):
      out += "{"
      for (i, m) in members.enumerated() {
        if i > 0 { out += "," }
        JSONValue.writeString(m.key, to: &out, escapingFormat: false)
        out += ":"
        m.value.write(to: &out)
      }
      out += "}"
    }
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
    var out = ""
    let cut = s.unicodeScalars.count > limit
    let kept = cut ? String(String.UnicodeScalarView(s.unicodeScalars.prefix(max(limit, 0)))) : s
    writeString(kept, to: &out, escapingFormat: true)
    if cut { out.insert(contentsOf: "…", at: out.index(before: out.endIndex)) }
    return out
  }

  private static func writeString(_ s: String, to out: inout String, escapingFormat: Bool) {
    out += "\""
    for u in s.unicodeScalars {
      switch u.value {
      case 0x22: out += "\\\""
      case 0x5C: out += "\\\\"
      case 0x0A: out += "\\n"
      case 0x0D: out += "\\r"
      case 0x09: out += "\\t"
      case 0x08: out += "\\b"
      case 0x0C: out += "\\f"
      case 0..<0x20: out += unicodeEscape(u.value)
      case 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C:
        if escapingFormat { out += unicodeEscape(u.value) } else { out.unicodeScalars.append(u) }
      default: out.unicodeScalars.append(u)
      }
    }
    out += "\""
  }

  private static func unicodeEscape(_ v: UInt32) -> String {
    let h = String(v, radix: 16)
    return "\\u" + String(repeating: "0", count: max(0, 4 - h.count)) + h
  }
}
