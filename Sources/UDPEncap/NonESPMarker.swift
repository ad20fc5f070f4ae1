// SPDX-License-Identifier: Apache-2.0
// The non-ESP marker in front of IKE on a NAT-T port (RFC 3948 §2.2) and the NAT-keepalive (§2.3).

extension UDPEncap {
  /// The NAT-keepalive payload: a single 0xFF byte. RFC 3948 §2.3.
  public static let natKeepalive: [UInt8] = [UDPEncapConstants.natKeepaliveByte]

  /// Writes the NAT-keepalive payload at `p` (room for one byte).
  /// - Returns: the payload length, 1.
  @inlinable
  public static func writeKeepalive(to p: UnsafeMutableRawPointer) -> Int {
    p.storeBytes(of: UDPEncapConstants.natKeepaliveByte, as: UInt8.self)
    return 1
  }

  /// Writes the 4-byte non-ESP marker (zeros) at `p`, in front of an IKE message. RFC 3948 §2.2.
  @inlinable
  public static func writeNonESPMarker(to p: UnsafeMutableRawPointer) {
    p.storeBytes(of: UInt32(0), as: UInt32.self)
  }

  /// Whether `payload` starts with the non-ESP marker and holds a whole IKE header after it.
  @inlinable
  public static func hasNonESPMarker(_ payload: UnsafeRawBufferPointer) -> Bool {
    classify(payload) == .ike
  }
}
