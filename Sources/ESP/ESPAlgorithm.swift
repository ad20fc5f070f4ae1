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
  /// AES-128-CBC (RFC 3602) with HMAC-SHA-1-96 (RFC 2404): what Windows' built-in clients offer.
  case aes128sha1 = "aes128-sha1"
  /// AES-256-CBC (RFC 3602) with HMAC-SHA-1-96 (RFC 2404).
  case aes256sha1 = "aes256-sha1"
  /// AES-128-CBC (RFC 3602) with HMAC-SHA-256-128 (RFC 4868).
  case aes128sha256 = "aes128-sha256"
  /// AES-256-CBC (RFC 3602) with HMAC-SHA-256-128 (RFC 4868).
  case aes256sha256 = "aes256-sha256"
  /// AES-128-CBC (RFC 3602) with HMAC-SHA-384-192 (RFC 4868).
  case aes128sha384 = "aes128-sha384"
  /// AES-256-CBC (RFC 3602) with HMAC-SHA-384-192 (RFC 4868).
  case aes256sha384 = "aes256-sha384"
  /// AES-256-CBC (RFC 3602) with HMAC-SHA-512-256 (RFC 4868).
  case aes256sha512 = "aes256-sha512"
  /// No encryption (RFC 2410) with HMAC-SHA-256-128 (RFC 4868); for debugging.
  case nullsha256 = "null-sha256"

  /// Looks up an algorithm by its strongSwan keyword, or by its `ip xfrm` name and key lengths.
  ///
  /// `cbc(aes)` names only the cipher; the HMAC is told by the length of `auth_key`, which is the
  /// digest size for every HMAC here (RFC 2404 §3, RFC 4868 §2.1.1): 20 bytes SHA-1, 48 SHA-384,
  /// 64 SHA-512, and SHA-256 otherwise (also when `auth_key` is absent or of another length, so
  /// that the key-length error names `aes128-sha256` as it always did). `cbc(aes)+hmac(sha1)` and
  /// its siblings name both.
  /// - Parameters:
  ///   - name: `aes128gcm16`, …, or `rfc4106(gcm(aes))`, `rfc7539esp(chacha20,poly1305)`,
  ///     `cbc(aes)`, `cbc(aes)+hmac(sha1|sha256|sha384|sha512)`, `hmac(sha256)`.
  ///   - keyLength: bytes of `key` (it tells the AES key size apart for the `ip xfrm` names).
  ///   - authKeyLength: bytes of `auth_key`, nil if absent (it tells the HMAC apart for `cbc(aes)`).
  /// - Returns: the algorithm, or nil if the name is unknown or the key length fits none.
  public static func named(_ name: String, keyLength: Int, authKeyLength: Int? = nil) -> ESPAlgorithm? {
    let lowered = name.lowercased()
    if let a = ESPAlgorithm(rawValue: lowered) { return a }
    let aes256 = keyLength == 32
    switch lowered {
    case "rfc4106(gcm(aes))":
      switch keyLength {
      case 24: return .aes192gcm16
      case 36: return .aes256gcm16
      default: return .aes128gcm16
      }
    case "rfc7539esp(chacha20,poly1305)": return .chacha20poly1305
    case "cbc(aes)":
      switch authKeyLength {
      case ESPIntegrity.sha1.keyLength: return aes256 ? .aes256sha1 : .aes128sha1
      case ESPIntegrity.sha384.keyLength: return aes256 ? .aes256sha384 : .aes128sha384
      case ESPIntegrity.sha512.keyLength: return .aes256sha512
      default: return aes256 ? .aes256sha256 : .aes128sha256
      }
    case "cbc(aes)+hmac(sha1)": return aes256 ? .aes256sha1 : .aes128sha1
    case "cbc(aes)+hmac(sha256)": return aes256 ? .aes256sha256 : .aes128sha256
    case "cbc(aes)+hmac(sha384)": return aes256 ? .aes256sha384 : .aes128sha384
    case "cbc(aes)+hmac(sha512)": return .aes256sha512
    case "ecb(cipher_null)", "null", "hmac(sha256)": return .nullsha256
    default: return nil
    }
  }

  /// Whether this is an AEAD transform (ICV computed by the cipher, AAD = SPI and sequence number).
  public var isAEAD: Bool { integrity == nil }

  /// The HMAC that computes the ICV, or nil for the AEAD transforms.
  public var integrity: ESPIntegrity? {
    switch self {
    case .aes128gcm16, .aes192gcm16, .aes256gcm16, .chacha20poly1305: nil
    case .aes128sha1, .aes256sha1: .sha1
    case .aes128sha256, .aes256sha256, .nullsha256: .sha256
    case .aes128sha384, .aes256sha384: .sha384
    case .aes256sha512: .sha512
    }
  }

  /// Bytes of `key`: the cipher key, plus the 4-byte salt for the AEAD transforms.
  public var keyLength: Int {
    switch self {
    case .aes128gcm16: 16 + ESPConstants.saltLength
    case .aes192gcm16: 24 + ESPConstants.saltLength
    case .aes256gcm16: 32 + ESPConstants.saltLength
    case .chacha20poly1305: 32 + ESPConstants.saltLength
    case .aes128sha1, .aes128sha256, .aes128sha384: 16
    case .aes256sha1, .aes256sha256, .aes256sha384, .aes256sha512: 32
    case .nullsha256: 0
    }
  }

  /// Bytes of `auth_key`: the HMAC's key size (``ESPIntegrity/keyLength``), 0 for AEAD.
  public var authKeyLength: Int { integrity?.keyLength ?? 0 }

  /// Whether the payload is encrypted with AES-CBC (RFC 3602).
  public var isCBC: Bool { !isAEAD && keyLength > 0 }

  /// Bytes of the explicit IV in each packet: 8 for RFC 4106/7634, 16 for AES-CBC, 0 for null.
  public var ivLength: Int {
    if isAEAD { return 8 }
    return isCBC ? 16 : 0
  }

  /// Bytes of the ICV: 16 for the AEADs, the truncated HMAC (12, 16, 24 or 32) otherwise.
  public var icvLength: Int { integrity?.icvLength ?? 16 }

  /// The cipher's block size for padding: 16 for AES-CBC, else the 4-byte ESP alignment.
  public var blockSize: Int { isCBC ? 16 : ESPConstants.minimumAlignment }

  /// The name Wireshark's `esp_sa` table uses for the encryption part.
  public var wiresharkEncryption: String {
    switch self {
    case .aes128gcm16, .aes192gcm16, .aes256gcm16: "AES-GCM with 16 octet ICV [RFC4106]"
    case .chacha20poly1305: "ChaCha20 with Poly1305 [RFC7634]"
    case .aes128sha1, .aes256sha1, .aes128sha256, .aes256sha256, .aes128sha384, .aes256sha384, .aes256sha512:
      "AES-CBC [RFC3602]"
    case .nullsha256: "NULL"
    }
  }

  /// The name Wireshark's `esp_sa` table uses for the authentication part.
  public var wiresharkAuthentication: String { integrity?.wiresharkName ?? "NULL" }
}
