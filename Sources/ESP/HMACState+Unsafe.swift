// SPDX-License-Identifier: Apache-2.0
// Truncated HMACs (RFC 2104) over OpenSSL's low-level hash contexts, restarted per packet by copy.
internal import CCrypto

/// HMAC-SHA-1/256/384/512 over precomputed inner and outer hash states, with no allocation per
/// message.
///
/// The states live in one allocation per SA (``AEADContext/hmacStates``): three contexts of
/// ``stride(_:)`` bytes (inner, outer and a work area) and the digest. Each message copies the
/// inner state into the work area, absorbs the data and finishes; then the same with the outer
/// state and the inner digest (RFC 2104 §2: `H(K ^ opad, H(K ^ ipad, text))`). Working in the
/// allocation rather than on a stack copy keeps key-derived state where `deinit` cleanses it.
///
/// ```
///   | inner (K ^ ipad absorbed) | outer (K ^ opad absorbed) | work (per message) | digest |
///   |<-------- stride -------->|
/// ```
///
/// The contexts are OpenSSL's `SHA_CTX` (SHA-1), `SHA256_CTX` and `SHA512_CTX` (SHA-384 and
/// SHA-512 share it). Not thread-safe: the work area belongs to the SA's loop.
enum HMACState {
  /// Bytes of the whole allocation for `integrity`: three contexts and the digest.
  static func size(_ integrity: ESPIntegrity) -> Int { 3 * stride(integrity) + integrity.digestLength }

  /// Bytes per context for `integrity`: the C struct's size, rounded up to 16.
  static func stride(_ integrity: ESPIntegrity) -> Int {
    let size =
      switch integrity {
      case .sha1: MemoryLayout<SHA_CTX>.size
      case .sha256: MemoryLayout<SHA256_CTX>.size
      case .sha384, .sha512: MemoryLayout<SHA512_CTX>.size
      }
    return (size + 15) & ~15
  }

  /// Allocates the contexts and the digest slot and absorbs `key ^ ipad` into the first context,
  /// `key ^ opad` into the second (RFC 2104 §2). Control path only.
  /// - Parameters:
  ///   - integrity: the hash.
  ///   - key: the HMAC key; at most one block (every `auth_key` here is the digest size, shorter
  ///     than a block, so it is never hashed first).
  ///   - stride: ``stride(_:)`` of `integrity`.
  /// - Returns: the allocation; the caller cleanses (OPENSSL_cleanse, ``size(_:)`` bytes) and
  ///   frees it.
  static func derive(_ integrity: ESPIntegrity, key: [UInt8], stride: Int) -> UnsafeMutableRawPointer {
    precondition(key.count <= integrity.blockLength, "HMAC keys longer than a block are not supported")
    let states = UnsafeMutableRawPointer.allocate(byteCount: size(integrity), alignment: 16)
    // Zeroed whole, so that copying a context's padding up to the stride copies defined bytes.
    states.initializeMemory(as: UInt8.self, repeating: 0, count: size(integrity))
    for i in 0..<3 {
      let state = states + i * stride
      switch integrity {
      case .sha1: state.initializeMemory(as: SHA_CTX.self, repeating: SHA_CTX(), count: 1)
      case .sha256: state.initializeMemory(as: SHA256_CTX.self, repeating: SHA256_CTX(), count: 1)
      case .sha384, .sha512: state.initializeMemory(as: SHA512_CTX.self, repeating: SHA512_CTX(), count: 1)
      }
    }
    var pad = [UInt8](repeating: 0, count: integrity.blockLength)
    for (i, b) in key.enumerated() { pad[i] = b }
    for i in pad.indices { pad[i] ^= 0x36 }
    start(integrity, states)
    pad.withUnsafeBytes { update(integrity, states, $0.baseAddress!, $0.count) }
    for i in pad.indices { pad[i] ^= 0x36 ^ 0x5c }
    start(integrity, states + stride)
    pad.withUnsafeBytes { update(integrity, states + stride, $0.baseAddress!, $0.count) }
    pad.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
    return states
  }

  /// The full HMAC of `length` bytes at `data`, followed by the 4 bytes at `trailer` if given
  /// (ESN's high sequence bits, RFC 4303 §2.2.1).
  /// - Parameters:
  ///   - integrity: the hash of `states`.
  ///   - states: the allocation from ``derive(_:key:stride:)``.
  ///   - stride: its stride.
  ///   - data: the message.
  ///   - length: its length.
  ///   - trailer: 4 more bytes to absorb, or nil.
  /// - Returns: the untruncated HMAC (`integrity.digestLength` bytes) in the digest slot, valid
  ///   until the next call.
  @inline(__always)
  static func authenticate(
    _ integrity: ESPIntegrity, states: UnsafeMutableRawPointer, stride: Int, data: UnsafeRawPointer, length: Int,
    trailer: UnsafeRawPointer?
  ) -> UnsafeRawPointer {
    let work = states + 2 * stride
    let digest = states + 3 * stride
    work.copyMemory(from: states, byteCount: stride)
    update(integrity, work, data, length)
    if let trailer { update(integrity, work, trailer, 4) }
    finish(integrity, work, digest)
    work.copyMemory(from: states + stride, byteCount: stride)
    update(integrity, work, digest, integrity.digestLength)
    finish(integrity, work, digest)
    return UnsafeRawPointer(digest)
  }

  @inline(__always)
  private static func start(_ integrity: ESPIntegrity, _ state: UnsafeMutableRawPointer) {
    switch integrity {
    case .sha1: SHA1_Init(state.assumingMemoryBound(to: SHA_CTX.self))
    case .sha256: SHA256_Init(state.assumingMemoryBound(to: SHA256_CTX.self))
    case .sha384: SHA384_Init(state.assumingMemoryBound(to: SHA512_CTX.self))
    case .sha512: SHA512_Init(state.assumingMemoryBound(to: SHA512_CTX.self))
    }
  }

  @inline(__always)
  private static func update(
    _ integrity: ESPIntegrity, _ state: UnsafeMutableRawPointer, _ data: UnsafeRawPointer, _ length: Int
  ) {
    switch integrity {
    case .sha1: SHA1_Update(state.assumingMemoryBound(to: SHA_CTX.self), data, length)
    case .sha256: SHA256_Update(state.assumingMemoryBound(to: SHA256_CTX.self), data, length)
    case .sha384: SHA384_Update(state.assumingMemoryBound(to: SHA512_CTX.self), data, length)
    case .sha512: SHA512_Update(state.assumingMemoryBound(to: SHA512_CTX.self), data, length)
    }
  }

  @inline(__always)
  private static func finish(
    _ integrity: ESPIntegrity, _ state: UnsafeMutableRawPointer, _ digest: UnsafeMutableRawPointer
  ) {
    switch integrity {
    case .sha1: CCrypto_SHA1_Final(digest, state.assumingMemoryBound(to: SHA_CTX.self))
    case .sha256: CCrypto_SHA256_Final(digest, state.assumingMemoryBound(to: SHA256_CTX.self))
    case .sha384: CCrypto_SHA384_Final(digest, state.assumingMemoryBound(to: SHA512_CTX.self))
    case .sha512: CCrypto_SHA512_Final(digest, state.assumingMemoryBound(to: SHA512_CTX.self))
    }
  }
}
