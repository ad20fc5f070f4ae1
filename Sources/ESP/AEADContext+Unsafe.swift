// SPDX-License-Identifier: Apache-2.0
// The per-packet work of an AEADContext: seal and open in place over raw packet pointers.
internal import CCrypto

extension AEADContext {
  /// Encrypts `text` in place and writes the ICV.
  ///
  /// ```
  ///   header                iv          text (payload | pad | padlen | nh)      icv
  ///   | SPI | Seq low |     | IV |      | ... encrypted in place ...  |        | ICV |
  /// ```
  /// - Parameters:
  ///   - header: the 8-byte ESP header; it is followed in memory by the IV and `text`.
  ///   - sequenceHigh: the high 32 bits of the sequence number when ESN is on (RFC 4303 §2.2.1).
  ///   - iv: the explicit IV (`algorithm.ivLength` bytes), already written.
  ///   - text: plaintext, `length` bytes.
  ///   - icv: where the ICV goes (``icvLength`` bytes: 16 for the AEADs, the truncated HMAC else).
  /// - Returns: false if OpenSSL failed.
  @inline(__always)
  func seal(
    header: UnsafeMutableRawPointer, sequenceHigh: UInt32?, iv: UnsafeRawPointer,
    text: UnsafeMutableRawPointer, length: Int, icv: UnsafeMutableRawPointer
  ) -> Bool {
    if algorithm.isAEAD {
      guard startAEAD(header: header, sequenceHigh: sequenceHigh, iv: iv) else { return false }
      var n: Int32 = 0
      guard CCrypto_EVP_CipherUpdate(cipher, text, &n, text, Int32(length)) == 1,
        CCrypto_EVP_CipherFinal(cipher, text + Int(n), &n) == 1,
        EVP_CIPHER_CTX_ctrl(cipher, CCrypto_EVP_CTRL_AEAD_GET_TAG(), 16, icv) == 1
      else { return false }
      return true
    }
    if let cipher {
      var n: Int32 = 0
      guard CCrypto_EVP_CipherInit(cipher, nil, nil, iv, 1) == 1,
        CCrypto_EVP_CipherUpdate(cipher, text, &n, text, Int32(length)) == 1
      else { return false }
    }
    // RFC 4303 §3.3.2: the ICV covers SPI, Sequence Number, IV and ciphertext (+ Seq high, §2.2.1).
    let digest = hmac(header, length: ESPConstants.headerSize + algorithm.ivLength + length, sequenceHigh: sequenceHigh)
    // RFC 2404 §2, RFC 4868 §2.1: the ICV is the leftmost bytes of the HMAC.
    icv.copyMemory(from: digest, byteCount: icvLength)
    return true
  }

  /// Verifies the ICV and decrypts `text` in place (RFC 4303 §3.4.4: verify, then decrypt).
  /// - Parameters: as ``seal(header:sequenceHigh:iv:text:length:icv:)``, with `icv` the received ICV.
  /// - Returns: false if the ICV does not verify (or OpenSSL failed); `text` is then undefined.
  @inline(__always)
  func open(
    header: UnsafeMutableRawPointer, sequenceHigh: UInt32?, iv: UnsafeRawPointer,
    text: UnsafeMutableRawPointer, length: Int, icv: UnsafeMutableRawPointer
  ) -> Bool {
    if algorithm.isAEAD {
      guard startAEAD(header: header, sequenceHigh: sequenceHigh, iv: iv) else { return false }
      var n: Int32 = 0
      guard CCrypto_EVP_CipherUpdate(cipher, text, &n, text, Int32(length)) == 1,
        EVP_CIPHER_CTX_ctrl(cipher, CCrypto_EVP_CTRL_AEAD_SET_TAG(), 16, icv) == 1
      else { return false }
      return CCrypto_EVP_CipherFinal(cipher, text + Int(n), &n) == 1
    }
    let digest = hmac(header, length: ESPConstants.headerSize + algorithm.ivLength + length, sequenceHigh: sequenceHigh)
    guard CRYPTO_memcmp(digest, icv, icvLength) == 0 else { return false }
    if let cipher {
      var n: Int32 = 0
      guard CCrypto_EVP_CipherInit(cipher, nil, nil, iv, 0) == 1,
        CCrypto_EVP_CipherUpdate(cipher, text, &n, text, Int32(length)) == 1
      else { return false }
    }
    return true
  }

  /// Writes an unpredictable, never-repeating CBC IV for `counter` (AES-ECB of the counter).
  /// - Returns: false if OpenSSL failed.
  @inline(__always)
  func makeCBCIV(counter: UInt64, into iv: UnsafeMutableRawPointer) -> Bool {
    let block = scratch + Scratch.counter
    block.storeBigEndian(counter, at: 0)
    block.storeBigEndian(UInt64(0), at: 8)
    var n: Int32 = 0
    return CCrypto_EVP_CipherUpdate(ivCipher, iv, &n, block, 16) == 1
  }

  /// Sets the nonce (salt | IV) and feeds the AAD. RFC 4106 §5, RFC 7634 §2.1.
  @inline(__always)
  private func startAEAD(header: UnsafeMutableRawPointer, sequenceHigh: UInt32?, iv: UnsafeRawPointer) -> Bool {
    let nonce = scratch + Scratch.nonce
    nonce.storeBytes(of: iv.loadUnaligned(as: UInt64.self), toByteOffset: 4, as: UInt64.self)
    guard CCrypto_EVP_CipherInit(cipher, nil, nil, nonce, -1) == 1 else { return false }
    var n: Int32 = 0
    if let high = sequenceHigh {
      // With ESN the AAD is SPI | Seq high | Seq low (RFC 4106 §5).
      let aad = scratch + Scratch.aad
      aad.storeBytes(of: header.loadUnaligned(as: UInt32.self), toByteOffset: 0, as: UInt32.self)
      aad.storeBigEndian(high, at: 4)
      aad.storeBytes(of: header.loadUnaligned(fromByteOffset: 4, as: UInt32.self), toByteOffset: 8, as: UInt32.self)
      return CCrypto_EVP_CipherUpdate(cipher, nil, &n, aad, 12) == 1
    }
    return CCrypto_EVP_CipherUpdate(cipher, nil, &n, header, 8) == 1
  }

  /// The SA's HMAC of `length` bytes at `data` (then Seq high, if any: RFC 4303 §2.2.1).
  /// - Returns: the untruncated HMAC, valid until the next packet (an HMAC transform's context
  ///   always has its states).
  @inline(__always)
  private func hmac(_ data: UnsafeRawPointer, length: Int, sequenceHigh: UInt32?) -> UnsafeRawPointer {
    let states = hmacStates!  // programmer error otherwise: only the HMAC transforms come here
    var trailer: UnsafeRawPointer? = nil
    if let high = sequenceHigh {
      // Seq high goes in the AAD slot, which the HMAC transforms do not use otherwise.
      let slot = scratch + Scratch.aad
      slot.storeBigEndian(high, at: 0)
      trailer = UnsafeRawPointer(slot)
    }
    return HMACState.authenticate(
      integrity!, states: states, stride: hmacStateStride, data: data, length: length,
      trailer: trailer)
  }
}
