// SPDX-License-Identifier: Apache-2.0
// The ESP transforms espd carries, with their key, IV, ICV and block sizes.

/// An ESP transform, named by its strongSwan proposal keyword (INTERFACE.md).
public enum ESPAlgorithm: String, CaseIterable, Sendable {
  /// AES-GCM with a 16-byte ICV and a 128-bit key. RFC 4106.
  case aes128gcm16
  /// AES-GCM with a 16-byte ICV and a 192-bit key. RFC 4106.
  case aes192gcm16
  /// AES-GCM with a 16-byte ICV and a 256-bit key. RFC 4106.
  case aes256gcm16
  /// ChaCha20-Poly1305. RFC 7634.
  case chacha20poly1305
  /// AES-128-CBC (RFC 3602) with HMAC-SHA-256-128 (RFC 4868).
  case aes128sha256 = "aes128-sha256"
  /// AES-256-CBC (RFC 3602) with HMAC-SHA-256-128 (RFC 4868).
  case aes256sha256 = "aes256-sha256"
  /// No encryption (RFC 2410) with HMAC-SHA-256-128 (RFC 4868); for debugging.
  case nullsha256 = "null-sha256"

  /// Looks up an algorithm by its strongSwan keyword, or by its `ip xfrm` name and key length.
  /// - Parameters:
  ///   - name: `aes128gcm16`, …, or `rfc4106(gcm(aes))`, `rfc7539esp(chacha20,poly1305)`, `cbc(aes)`.
  ///   - keyLength: bytes of `key` (it tells the AES key size apart for the `ip xfrm` names).
  /// - Returns: the algorithm, or nil if the name is unknown or the key length fits none.
  public static func named(_ name: String, keyLength: Int) -> ESPAlgorithm? {
    if let a = ESPAlgorithm(rawValue: name.lowercased()) { return a }
    switch name.lowercased() {
    case "rfc4106(gcm(aes))":
      switch keyLength {
      case 24: return .aes192gcm16
      case 36: return .aes256gcm16
      default: return .aes128gcm16
      }
    case "rfc7539esp(chacha20,poly1305)": return .chacha20poly1305
    case "cbc(aes)", "cbc(aes)+hmac(sha256)": return keyLength == 32 ? .aes256sha256 : .aes128sha256
    case "ecb(cipher_null)", "null", "hmac(sha256)": return .nullsha256
    default: return nil
    }
  }

  /// Whether this is an AEAD transform (ICV computed by the cipher, AAD = SPI and sequence number).
  public var isAEAD: Bool {
    switch self {
    case .aes128gcm16, .aes192gcm16, .aes256gcm16, .chacha20poly1305: true
    case .aes128sha256, .aes256sha256, .nullsha256: false
    }
  }

  /// Bytes of `key`: the cipher key, plus the 4-byte salt for the AEAD transforms.
  public var keyLength: Int {
    switch self {
    case .aes128gcm16: 16 + ESPConstants.saltLength
    case .aes192gcm16: 24 + ESPConstants.saltLength
    case .aes256gcm16: 32 + ESPConstants.saltLength
    case .chacha20poly1305: 32 + ESPConstants.saltLength
    case .aes128sha256: 16
    case .aes256sha256: 32
    case .nullsha256: 0
    }
  }

  /// Bytes of `auth_key`: 32 for HMAC-SHA-256-128 (RFC 4868 §2.1.1), else 0.
  public var authKeyLength: Int { isAEAD ? 0 : 32 }

  /// Bytes of the explicit IV in each packet: 8 for RFC 4106/7634, 16 for AES-CBC, 0 for null.
  public var ivLength: Int {
    switch self {
    case .aes128gcm16, .aes192gcm16, .aes256gcm16, .chacha20poly1305: 8
    case .aes128sha256, .aes256sha256: 16
    case .nullsha256: 0
    }
  }

  /// Bytes of the ICV: 16 for every transform here.
  public var icvLength: Int { 16 }

  /// The cipher's block size for padding: 16 for AES-CBC, else the 4-byte ESP alignment.
  public var blockSize: Int {
    switch self {
    case .aes128sha256, .aes256sha256: 16
    default: ESPConstants.minimumAlignment
    }
  }

  /// The name Wireshark's `esp_sa` table uses for the encryption part.
  public var wiresharkEncryption: String {
    switch self {
    case .aes128gcm16, .aes192gcm16, .aes256gcm16: "AES-GCM with 16 octet ICV [RFC4106]"
    case .chacha20poly1305: "ChaCha20 with Poly1305 [RFC7634]"
    case .aes128sha256, .aes256sha256: "AES-CBC [RFC3602]"
    case .nullsha256: "NULL"
    }
  }

  /// The name Wireshark's `esp_sa` table uses for the authentication part.
  public var wiresharkAuthentication: String {
    isAEAD ? "NULL" : "HMAC-SHA-256-128 [RFC4868]"
  }
}
