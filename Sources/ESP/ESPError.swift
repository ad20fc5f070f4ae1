// SPDX-License-Identifier: Apache-2.0
// Why ESP refused a packet: the per-packet error type of encapsulation and decapsulation.

/// Why a packet could not be encapsulated or decapsulated. Each case maps to one drop counter.
public enum ESPError: Error, Equatable, Sendable {
  /// Shorter than ESP header + IV + trailer + ICV. RFC 4303 §2.
  case truncated
  /// The ciphertext is not a whole number of cipher blocks (AES-CBC, RFC 3602 §3).
  case malformed
  /// Pad Length exceeds the payload, or the pad bytes are not 1, 2, 3, …. RFC 4303 §2.4.
  case badPadding
  /// No inbound SA has this SPI (or the packet reached an SA with another SPI).
  case unknownSPI
  /// The sequence number was already received. RFC 4303 §3.4.3.
  case replayed
  /// The sequence number is to the left of the anti-replay window. RFC 4303 §3.4.3.
  case outsideWindow
  /// The ICV did not verify. RFC 4303 §3.4.4.
  case authenticationFailed
  /// The outbound SA has used its last sequence number; it must be rekeyed. RFC 4303 §3.3.3.
  case sequenceExhausted
  /// The buffer lacks the headroom or tailroom that this packet needs.
  case noRoom
  /// OpenSSL reported an internal failure (not caused by the packet's contents).
  case cryptoFailure
  /// The SA reached a hard lifetime limit (RFC 4301 §4.4.2.1) and carries no more packets.
  case expired
}

/// Why a security association could not be created (control path only).
public enum SAError: Error, Equatable, Sendable, CustomStringConvertible {
  /// `key` has the wrong length for the algorithm.
  case keyLength(expected: Int, got: Int)
  /// `auth_key` has the wrong length for the algorithm (0 expected: the algorithm takes none).
  case authKeyLength(expected: Int, got: Int)
  /// The SPI is zero, which RFC 4303 §2.1 reserves.
  case zeroSPI
  /// The replay window is larger than ``ESPConstants/maxReplayWindow``.
  case replayWindow(Int)
  /// The starting sequence number is beyond what the SA can carry (2^32 - 1 without ESN).
  case sequenceRange(UInt64)
  /// OpenSSL could not create the context (the algorithm is missing from this libcrypto).
  case crypto(String)

  public var description: String {
    switch self {
    case .keyLength(let e, let g): "expected \(e) bytes, got \(g)"
    case .authKeyLength(let e, let g):
      e == 0 ? "this algorithm takes no auth_key, got \(g) bytes" : "expected \(e) bytes, got \(g)"
    case .zeroSPI: "SPI 0 is reserved (RFC 4303 §2.1)"
    case .replayWindow(let w): "replay window \(w) is larger than \(ESPConstants.maxReplayWindow)"
    case .sequenceRange(let s): "sequence number \(s) does not fit in 32 bits (enable esn)"
    case .crypto(let m): "libcrypto: \(m)"
    }
  }
}
