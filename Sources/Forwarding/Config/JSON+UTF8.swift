// SPDX-License-Identifier: Apache-2.0
// UTF-8 for the JSON parser: strict decoding of raw text (RFC 3629) and encoding of `\u` escapes.

extension JSONParser {
  /// Decodes one well-formed UTF-8 scalar (no overlong forms, surrogates or values past U+10FFFF).
  /// - Returns: the scalar and its length in bytes, or nil if the bytes at `i` are not one.
  func decodeScalar(at i: Int) -> (UInt32, Int)? {
    guard i < bytes.count else { return nil }
    let b0 = bytes[i]
    let length: Int
    var scalar: UInt32
    switch b0 {
    case 0..<0x80: return (UInt32(b0), 1)
    case 0xC2...0xDF: (length, scalar) = (2, UInt32(b0 & 0x1F))
    case 0xE0...0xEF: (length, scalar) = (3, UInt32(b0 & 0x0F))
    case 0xF0...0xF4: (length, scalar) = (4, UInt32(b0 & 0x07))
    default: return nil
    }
    guard i + length <= bytes.count else { return nil }
    for k in 1..<length {
      let b = bytes[i + k]
      guard b & 0xC0 == 0x80 else { return nil }
      scalar = scalar << 6 | UInt32(b & 0x3F)
    }
    let minimum: UInt32 = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000
    guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return nil }
    return (scalar, length)
  }

  func appendUTF8(_ s: UInt32, to out: inout [UInt8]) {
    switch s {
    case 0..<0x80:
      out.append(UInt8(s))
    case 0x80..<0x800:
      out.append(0xC0 | UInt8(s >> 6))
      out.append(0x80 | UInt8(s & 0x3F))
    case 0x800..<0x10000:
      out.append(0xE0 | UInt8(s >> 12))
      out.append(0x80 | UInt8(s >> 6 & 0x3F))
      out.append(0x80 | UInt8(s & 0x3F))
    default:
      out.append(0xF0 | UInt8(truncatingIfNeeded: s >> 18))
      out.append(0x80 | UInt8(s >> 12 & 0x3F))
      out.append(0x80 | UInt8(s >> 6 & 0x3F))
      out.append(0x80 | UInt8(s & 0x3F))
    }
  }
}
