// SPDX-License-Identifier: Apache-2.0
// The HMAC integrity transforms under ESP's non-AEAD algorithms, with their key, block and ICV sizes.

/// An HMAC integrity transform (RFC 2104) as ESP uses it: the digest truncated to the ICV.
///
/// ```
///   transform           key   block  digest  ICV (truncation)   source
///   HMAC-SHA-1-96        20     64     20      12               RFC 2404 §2, §3
///   HMAC-SHA-256-128     32     64     32      16               RFC 4868 §2.1, §2.1.1
///   HMAC-SHA-384-192     48    128     48      24               RFC 4868 §2.1, §2.1.1
///   HMAC-SHA-512-256     64    128     64      32               RFC 4868 §2.1, §2.1.1
/// ```
public enum ESPIntegrity: Sendable, CaseIterable {
  /// HMAC-SHA-1-96. RFC 2404.
  case sha1
  /// HMAC-SHA-256-128. RFC 4868.
  case sha256
  /// HMAC-SHA-384-192. RFC 4868.
  case sha384
  /// HMAC-SHA-512-256. RFC 4868.
  case sha512

  /// Bytes of `auth_key`: the digest size (RFC 2404 §3 for SHA-1, RFC 4868 §2.1.1 for SHA-2).
  public var keyLength: Int { digestLength }

  /// Bytes of the full digest.
  public var digestLength: Int {
    switch self {
    case .sha1: 20
    case .sha256: 32
    case .sha384: 48
    case .sha512: 64
    }
  }

  /// Bytes of the hash's input block: the HMAC pads are this long (RFC 2104 §2).
  public var blockLength: Int {
    switch self {
    case .sha1, .sha256: 64
    case .sha384, .sha512: 128
    }
  }

  /// Bytes of the ICV: the leftmost bytes of the digest (RFC 2404 §2: 96 bits; RFC 4868 §2.1:
  /// the authenticator is half the output length).
  public var icvLength: Int {
    switch self {
    case .sha1: 12
    case .sha256: 16
    case .sha384: 24
    case .sha512: 32
    }
  }

  /// The HMAC's name in messages: `HMAC-SHA-1`, `HMAC-SHA-256`, …
  public var hmacName: String {
    switch self {
    case .sha1: "HMAC-SHA-1"
    case .sha256: "HMAC-SHA-256"
    case .sha384: "HMAC-SHA-384"
    case .sha512: "HMAC-SHA-512"
    }
  }

  /// The name Wireshark's `esp_sa` table uses (`esp_authentication_type_vals` in packet-esp.c).
  public var wiresharkName: String {
    switch self {
    case .sha1: "HMAC-SHA-1-96 [RFC2404]"
    case .sha256: "HMAC-SHA-256-128 [RFC4868]"
    case .sha384: "HMAC-SHA-384-192 [RFC4868]"
    case .sha512: "HMAC-SHA-512-256 [RFC4868]"
    }
  }
}
