// SPDX-License-Identifier: Apache-2.0
// Wiping key copies once an SA is gone (control path only).
internal import CCrypto

/// Wiping key material that is no longer needed.
public enum KeyMaterial {
  /// Overwrites the bytes this array owns with zeros, in a way the compiler may not drop
  /// (OPENSSL_cleanse). Arrays are values: copies elsewhere are not reached.
  public static func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { b in
      if let p = b.baseAddress { OPENSSL_cleanse(p, b.count) }
    }
  }
}
