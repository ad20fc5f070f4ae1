// SPDX-License-Identifier: Apache-2.0
// Wire-format constants of ESP (RFC 4303) and of the transforms it carries, each with its source.

/// Fixed sizes and values of the ESP wire format.
public enum ESPConstants {
  /// SPI (4) + Sequence Number (4). RFC 4303 §2.
  public static let headerSize = 8
  /// Pad Length (1) + Next Header (1). RFC 4303 §2.
  public static let trailerSize = 2
  /// The Pad Length field is one byte. RFC 4303 §2.4.
  public static let maxPadLength = 255
  /// The ciphertext (payload, padding and trailer) ends on a 4-byte boundary. RFC 4303 §2.4.
  public static let minimumAlignment = 4
  /// The largest explicit IV carried: one AES block for AES-CBC. RFC 3602 §3.
  public static let maxIVLength = 16
  /// The largest ICV carried: 32 bytes (HMAC-SHA-512-256, RFC 4868 §2.1; the AEADs and
  /// HMAC-SHA-256-128 carry 16, HMAC-SHA-384-192 24, HMAC-SHA-1-96 12).
  public static let maxICVLength = 32
  /// The salt that RFC 4106 §4 (AES-GCM) and RFC 7634 §2 (ChaCha20-Poly1305) append to the key.
  public static let saltLength = 4
  /// Next Header value of an IPv4 packet in tunnel mode (IANA protocol number 4, IP-in-IP).
  public static let nextHeaderIPv4: UInt8 = 4
  /// Next Header value of an IPv6 packet in tunnel mode (IANA protocol number 41).
  public static let nextHeaderIPv6: UInt8 = 41
  /// "No Next Header": a dummy packet that the receiver discards. RFC 4303 §2.6.
  public static let nextHeaderNone: UInt8 = 59
  /// The largest 32-bit sequence number; a sender must not wrap past it. RFC 4303 §3.3.3.
  public static let maxSequence32: UInt64 = 0xFFFF_FFFF
  /// The largest 64-bit extended sequence number. RFC 4303 §2.2.1.
  public static let maxSequence64: UInt64 = .max
  /// Default anti-replay window, in packets (as `ip xfrm` and strongSwan configure it).
  public static let defaultReplayWindow = 1024
  /// Largest anti-replay window accepted, in packets (INTERFACE.md asks for at least 4096).
  public static let maxReplayWindow = 65536
}

/// Room a packet buffer must leave around the payload so that ESP can work in place
/// (wireguard-go's `offset`, the kernel's `DATA_PACKET_HEAD_ROOM`).
///
/// ```
///  |<-- headroom -->|<--------- payload --------->|<------- tailroom -------->|
///  | SPI | Seq | IV | inner packet (or L4 payload) | pad | padlen | nh | ICV  |
/// ```
public enum ESPLayout {
  /// ESP header plus the largest IV.
  public static let headroom = ESPConstants.headerSize + ESPConstants.maxIVLength
  /// Worst-case padding (AES-CBC: 15), the trailer, and the largest ICV.
  public static let tailroom = 15 + ESPConstants.trailerSize + ESPConstants.maxICVLength

  /// Bytes of padding that bring `payload + trailer` to a multiple of `blockSize`. RFC 4303 §2.4.
  /// - Parameters:
  ///   - payloadLength: bytes of payload data.
  ///   - blockSize: the cipher's block size, at least 4 (a power of two).
  /// - Returns: the pad length, `0..<blockSize`.
  @inlinable
  public static func padLength(payloadLength: Int, blockSize: Int) -> Int {
    (blockSize - ((payloadLength + ESPConstants.trailerSize) & (blockSize - 1))) & (blockSize - 1)
  }
}
