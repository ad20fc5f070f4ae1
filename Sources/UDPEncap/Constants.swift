// SPDX-License-Identifier: Apache-2.0
// Wire constants of UDP encapsulation of ESP (RFC 3948) and of the IKE header it shares a port with.

/// Fixed values of RFC 3948 framing.
public enum UDPEncapConstants {
  /// The IKE/NAT-T port. RFC 3948 §2.
  public static let natTraversalPort: UInt16 = 4500
  /// UDP header size. RFC 768.
  public static let udpHeaderSize = 8
  /// The non-ESP marker: four zero bytes where an ESP packet has its (never zero) SPI. RFC 3948 §2.2.
  public static let nonESPMarkerSize = 4
  /// The NAT-keepalive payload: one byte 0xFF. RFC 3948 §2.3.
  public static let natKeepaliveByte: UInt8 = 0xFF
  /// The fixed IKE header. RFC 7296 §3.1.
  public static let ikeHeaderSize = 28
  /// ESP header: SPI (4) + Sequence Number (4). RFC 4303 §2.
  public static let espHeaderSize = 8
  /// The smallest ESP packet worth an SPI lookup: header, an 8-byte IV, the 2-byte trailer, a
  /// 16-byte ICV padded to 4-byte alignment. Shorter datagrams cannot be ESP of any transform we carry.
  public static let minimumESPSize = espHeaderSize + 2 + 2 + 16
}
