// SPDX-License-Identifier: Apache-2.0
// Classifies a datagram that arrived on a NAT-T port: keepalive, IKE, ESP or malformed (RFC 3948 §2).

/// What a datagram on a NAT-T port carries.
public enum Classification: Equatable, Sendable {
  /// A NAT-keepalive (one byte 0xFF). RFC 3948 §2.3. Counted and dropped.
  case natKeepalive
  /// An IKE message behind the non-ESP marker; the IKE message starts at `offset` 4. RFC 3948 §2.2.
  case ike
  /// An ESP packet for this SPI. RFC 3948 §2.1.
  case esp(spi: UInt32)
  /// Anything else: too short, a zero SPI without a whole IKE header, or a lone byte other than 0xFF.
  case malformed
}

/// RFC 3948 framing. Pure: no I/O, no allocation.
public enum UDPEncap {
  /// Classifies the UDP payload of a datagram received on a NAT-T port.
  ///
  /// ```
  ///   1 byte    0xFF                                  -> natKeepalive
  ///   >= 32     00 00 00 00 | IKE header (28) | ...   -> ike
  ///   >= 28     SPI != 0 | Seq | IV | ... | ICV       -> esp(spi)
  ///   else                                            -> malformed
  /// ```
  /// - Parameter payload: the UDP payload.
  /// - Returns: the classification.
  @inlinable
  public static func classify(_ payload: UnsafeRawBufferPointer) -> Classification {
    let n = payload.count
    guard n >= UDPEncapConstants.nonESPMarkerSize, let p = payload.baseAddress else {
      if n == 1, payload[0] == UDPEncapConstants.natKeepaliveByte { return .natKeepalive }
      return .malformed
    }
    let spi = UInt32(bigEndian: p.loadUnaligned(as: UInt32.self))
    if spi == 0 {
      return n >= UDPEncapConstants.nonESPMarkerSize + UDPEncapConstants.ikeHeaderSize ? .ike : .malformed
    }
    return n >= UDPEncapConstants.minimumESPSize ? .esp(spi: spi) : .malformed
  }
}
