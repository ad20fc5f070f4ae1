// SPDX-License-Identifier: Apache-2.0
// The baseline: the bare OpenSSL EVP calls for one packet's AEAD (or CBC + HMAC), no ESP framing.
import CCrypto
import ESP

/// The raw OpenSSL work for one packet of `size` bytes, keyed once, nonce set per packet: what the
/// per-packet cost would be with no ESP at all. For the CBC transforms it is EVP AES-CBC plus
/// EVP_MAC HMAC with the transform's digest (truncated to its ICV), the obvious OpenSSL route.
final class RawEVP {
  let algorithm: ESPAlgorithm
  let cipher: OpaquePointer?
  let mac: OpaquePointer?
  let encrypt: Bool
  var nonce = [UInt8](repeating: 0, count: 16)
  let aad = [UInt8](repeating: 0xA5, count: 8)
  var digest = [UInt8](repeating: 0, count: 64)
  /// Bytes of the tag written after the text (16 for the AEADs, the truncated HMAC otherwise).
  let icvLength: Int

  init(algorithm: ESPAlgorithm, encrypt: Bool) {
    self.algorithm = algorithm
    self.encrypt = encrypt
    icvLength = algorithm.icvLength
    let key = [UInt8](repeating: 0x42, count: 64)
    let name: String? =
      switch algorithm {
      case .aes128gcm16: "AES-128-GCM"
      case .aes192gcm16: "AES-192-GCM"
      case .aes256gcm16: "AES-256-GCM"
      case .chacha20poly1305: "ChaCha20-Poly1305"
      case .aes128sha1, .aes128sha256, .aes128sha384: "AES-128-CBC"
      case .aes256sha1, .aes256sha256, .aes256sha384, .aes256sha512: "AES-256-CBC"
      case .nullsha256: nil
      }
    if let name {
      let c = EVP_CIPHER_fetch(nil, name, nil)
      let ctx = EVP_CIPHER_CTX_new()
      _ = key.withUnsafeBytes { CCrypto_EVP_CipherInit(ctx, c, $0.baseAddress, nil, encrypt ? 1 : 0) }
      EVP_CIPHER_free(c)
      if !algorithm.isAEAD { EVP_CIPHER_CTX_set_padding(ctx, 0) }
      cipher = ctx
    } else {
      cipher = nil
    }
    let digestName: String? =
      switch algorithm.integrity {
      case .sha1: "SHA1"
      case .sha256: "SHA256"
      case .sha384: "SHA384"
      case .sha512: "SHA512"
      case nil: nil
      }
    mac = digestName.map { d in
      key.withUnsafeBytes { CCrypto_HMAC_new(d, $0.baseAddress, algorithm.authKeyLength) }
    }
  }

  deinit {
    EVP_CIPHER_CTX_free(cipher)
    EVP_MAC_CTX_free(mac)
  }

  /// Seals or opens `length` bytes at `text` in place; the tag (``icvLength`` bytes) is at
  /// `text + length`.
  /// - Returns: whether the tag verified (open) or OpenSSL succeeded (seal).
  @inline(__always)
  func process(_ text: UnsafeMutableRawPointer, length: Int, counter: UInt64) -> Bool {
    var n: Int32 = 0
    if algorithm.isAEAD {
      nonce.withUnsafeMutableBytes { $0.storeBytes(of: counter.bigEndian, toByteOffset: 4, as: UInt64.self) }
      guard nonce.withUnsafeBytes({ CCrypto_EVP_CipherInit(cipher, nil, nil, $0.baseAddress, -1) }) == 1,
        aad.withUnsafeBytes({ CCrypto_EVP_CipherUpdate(cipher, nil, &n, $0.baseAddress, 8) }) == 1,
        CCrypto_EVP_CipherUpdate(cipher, text, &n, text, Int32(length)) == 1
      else { return false }
      if encrypt {
        return CCrypto_EVP_CipherFinal(cipher, text + length, &n) == 1
          && EVP_CIPHER_CTX_ctrl(cipher, CCrypto_EVP_CTRL_AEAD_GET_TAG(), 16, text + length) == 1
      }
      guard EVP_CIPHER_CTX_ctrl(cipher, CCrypto_EVP_CTRL_AEAD_SET_TAG(), 16, text + length) == 1 else { return false }
      return CCrypto_EVP_CipherFinal(cipher, text + length, &n) == 1
    }
    // CBC + HMAC (or HMAC alone): encrypt then MAC; verify then decrypt.
    if encrypt, let cipher {
      guard nonce.withUnsafeBytes({ CCrypto_EVP_CipherInit(cipher, nil, nil, $0.baseAddress, 1) }) == 1,
        CCrypto_EVP_CipherUpdate(cipher, text, &n, text, Int32(length)) == 1
      else { return false }
    }
    var outl = 0
    guard EVP_MAC_init(mac, nil, 0, nil) == 1, CCrypto_EVP_MAC_update(mac, text, length) == 1,
      digest.withUnsafeMutableBytes({ CCrypto_EVP_MAC_final(mac, $0.baseAddress, &outl, 64) }) == 1
    else { return false }
    if encrypt {
      digest.withUnsafeBytes { (text + length).copyMemory(from: $0.baseAddress!, byteCount: icvLength) }
      return true
    }
    let ok = digest.withUnsafeBytes { CRYPTO_memcmp($0.baseAddress, text + length, icvLength) } == 0
    if let cipher {
      guard nonce.withUnsafeBytes({ CCrypto_EVP_CipherInit(cipher, nil, nil, $0.baseAddress, 0) }) == 1,
        CCrypto_EVP_CipherUpdate(cipher, text, &n, text, Int32(length)) == 1
      else { return false }
    }
    return ok
  }
}
