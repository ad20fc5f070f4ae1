// SPDX-License-Identifier: Apache-2.0
// One SA's cipher state over OpenSSL: created and keyed once, freed and wiped in deinit.
internal import CCrypto

/// The cipher objects, fetched once per process: `EVP_CIPHER_fetch` is a locked lookup, too slow
/// to repeat for each of a million SAs. They are immutable and reference-counted by OpenSSL.
enum Ciphers {
  nonisolated(unsafe) static let aes128GCM = EVP_CIPHER_fetch(nil, "AES-128-GCM", nil)
  nonisolated(unsafe) static let aes192GCM = EVP_CIPHER_fetch(nil, "AES-192-GCM", nil)
  nonisolated(unsafe) static let aes256GCM = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil)
  nonisolated(unsafe) static let chacha20Poly1305 = EVP_CIPHER_fetch(nil, "ChaCha20-Poly1305", nil)
  nonisolated(unsafe) static let aes128CBC = EVP_CIPHER_fetch(nil, "AES-128-CBC", nil)
  nonisolated(unsafe) static let aes256CBC = EVP_CIPHER_fetch(nil, "AES-256-CBC", nil)
  nonisolated(unsafe) static let aes128ECB = EVP_CIPHER_fetch(nil, "AES-128-ECB", nil)
}

/// The transform of one SA in one direction: an AEAD (AES-GCM, ChaCha20-Poly1305) or AES-CBC /
/// null encryption composed with a truncated HMAC (SHA-1, SHA-256, SHA-384 or SHA-512), the way
/// the kernel's `authenc()` presents it.
///
/// Keyed once at creation; per packet only the nonce or IV changes, and nothing is allocated:
/// HMAC restarts from precomputed inner and outer hash states (RFC 2104 §2) instead of
/// `EVP_MAC_init`, which duplicates a provider context with malloc on every call in OpenSSL 3.
///
/// Not thread-safe; owned by one loop.
final class AEADContext {
  let algorithm: ESPAlgorithm
  let encrypt: Bool
  /// EVP_CIPHER_CTX for the cipher, or nil for null encryption.
  let cipher: OpaquePointer?
  /// AES-ECB EVP_CIPHER_CTX that makes unpredictable CBC IVs from a counter (outbound AES-CBC only).
  let ivCipher: OpaquePointer?
  /// Scratch memory: see ``Scratch``.
  let scratch: UnsafeMutableRawPointer
  /// The HMAC of the non-AEAD transforms (nil for the AEADs).
  let integrity: ESPIntegrity?
  /// Bytes of the ICV this context writes and checks.
  let icvLength: Int
  /// The HMAC's hash states and digest (``HMACState`` has the layout); HMAC transforms only (the
  /// AEADs would carry unused bytes per SA).
  let hmacStates: UnsafeMutableRawPointer?
  /// Bytes per hash state in ``hmacStates``: the C context's size rounded up to 16.
  let hmacStateStride: Int

  /// Offsets into ``scratch``.
  enum Scratch {
    static let nonce = 0  // 12 bytes: salt (4) | explicit IV (8)
    static let aad = 16  // 12 bytes: SPI | Seq high | Seq low (HMAC transforms: Seq high only)
    static let counter = 32  // 16 bytes: CBC IV generator input block
    static let size = 48  // (the HMAC digest lives with the hash states: see HMACState)
  }

  /// Creates and keys the context.
  /// - Parameters:
  ///   - algorithm: the transform.
  ///   - key: cipher key (+ 4-byte salt for AEADs), `algorithm.keyLength` bytes.
  ///   - authKey: HMAC key, `algorithm.authKeyLength` bytes.
  ///   - encrypt: true for an outbound SA.
  /// - Throws: ``SAError`` if a length is wrong or OpenSSL lacks the algorithm.
  init(algorithm: ESPAlgorithm, key: [UInt8], authKey: [UInt8], encrypt: Bool) throws(SAError) {
    guard key.count == algorithm.keyLength else {
      throw .keyLength(expected: algorithm.keyLength, got: key.count)
    }
    guard authKey.count == algorithm.authKeyLength else {
      throw .authKeyLength(expected: algorithm.authKeyLength, got: authKey.count)
    }
    self.algorithm = algorithm
    self.encrypt = encrypt
    integrity = algorithm.integrity
    icvLength = algorithm.icvLength
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: Scratch.size, alignment: 16)
    scratch.initializeMemory(as: UInt8.self, repeating: 0, count: Scratch.size)
    self.scratch = scratch

    let evp: OpaquePointer?
    switch algorithm {
    case .aes128gcm16: evp = Ciphers.aes128GCM
    case .aes192gcm16: evp = Ciphers.aes192GCM
    case .aes256gcm16: evp = Ciphers.aes256GCM
    case .chacha20poly1305: evp = Ciphers.chacha20Poly1305
    case .aes128sha1, .aes128sha256, .aes128sha384: evp = Ciphers.aes128CBC
    case .aes256sha1, .aes256sha256, .aes256sha384, .aes256sha512: evp = Ciphers.aes256CBC
    case .nullsha256: evp = nil
    }

    var ctx: OpaquePointer? = nil
    var ivCtx: OpaquePointer? = nil
    var failure: String? = nil
    if algorithm.isAEAD || algorithm.isCBC {
      ctx = EVP_CIPHER_CTX_new()
      let cipherKeyLength = algorithm.isAEAD ? key.count - ESPConstants.saltLength : key.count
      if evp == nil || ctx == nil {
        failure = "\(algorithm.rawValue) is not available"
      } else if key.withUnsafeBytes({ CCrypto_EVP_CipherInit(ctx, evp, $0.baseAddress, nil, encrypt ? 1 : 0) }) != 1 {
        failure = "cannot key \(algorithm.rawValue)"
      } else if algorithm.isAEAD {
        // RFC 4106 §4 / RFC 7634 §2: the last 4 bytes of the key material are the nonce salt.
        key.withUnsafeBytes { k in
          (scratch + Scratch.nonce).copyMemory(from: k.baseAddress! + cipherKeyLength, byteCount: 4)
        }
      } else {
        EVP_CIPHER_CTX_set_padding(ctx, 0)  // ESP pads itself (RFC 4303 §2.4)
        if encrypt {
          // RFC 3602 §3: CBC IVs must be unpredictable. Encrypting a per-SA counter under a
          // random key gives IVs that never repeat and cannot be predicted (the kernel's seqiv idea).
          var ivKey = [UInt8](repeating: 0, count: 16)
          ivCtx = EVP_CIPHER_CTX_new()
          if ivCtx == nil || ivKey.withUnsafeMutableBytes({ CCrypto_RAND_bytes($0.baseAddress, 16) }) != 1
            || ivKey.withUnsafeBytes({ CCrypto_EVP_CipherInit(ivCtx, Ciphers.aes128ECB, $0.baseAddress, nil, 1) }) != 1
          {
            failure = "cannot create the CBC IV generator"
          } else {
            EVP_CIPHER_CTX_set_padding(ivCtx, 0)
          }
          ivKey.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, 16) }
        }
      }
    }
    cipher = ctx
    ivCipher = ivCtx
    if let integrity = algorithm.integrity {
      hmacStateStride = HMACState.stride(integrity)
      hmacStates = HMACState.derive(integrity, key: authKey, stride: hmacStateStride)
    } else {
      hmacStateStride = 0
      hmacStates = nil
    }
    if let failure {
      throw .crypto(failure)
    }
  }

  deinit {
    EVP_CIPHER_CTX_free(cipher)  // frees and cleanses the key schedule
    EVP_CIPHER_CTX_free(ivCipher)
    OPENSSL_cleanse(scratch, Scratch.size)
    scratch.deallocate()
    if let hmacStates {
      OPENSSL_cleanse(hmacStates, HMACState.size(integrity!))
      hmacStates.deallocate()
    }
  }
}
