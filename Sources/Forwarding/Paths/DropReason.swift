// SPDX-License-Identifier: Apache-2.0
// Every reason the dataplane drops a packet, and the fixed array of counters they index.
import ESP

/// Why a packet was dropped. Each case indexes one counter in ``DropCounters``; the raw names are
/// the ones `espd stats`, `espd replay` and the metrics endpoint print (INTERFACE.md).
public enum DropReason: UInt8, CaseIterable, Sendable {
  /// No inbound SA has the packet's SPI.
  case unknownSPI
  /// The ICV did not verify.
  case authFailed
  /// The sequence number was seen before.
  case replayed
  /// The sequence number is left of the anti-replay window.
  case outsideWindow
  /// Too short or otherwise not parseable (ESP, UDP, IP or pcap framing).
  case malformed
  /// The ESP padding is not 1, 2, 3, … or longer than the payload.
  case badPadding
  /// A decrypted packet's source is outside the tunnel's `remote_ts`.
  case selectorMismatch
  /// No tunnel routes the packet's destination.
  case noRoute
  /// The outbound SA used its last sequence number.
  case sequenceExhausted
  /// The packet does not fit the buffer with ESP's headroom and tailroom.
  case tooBig
  /// OpenSSL failed internally.
  case cryptoFailure
  /// The tunnel has no peer endpoint yet (a responder that has not heard from it).
  case noPeer
  /// A dummy packet (Next Header 59, RFC 4303 §2.6), discarded by design.
  case dummy
  /// The SA reached a hard lifetime limit (bytes, packets or seconds) and was stopped.
  case expired

  /// The counter's name in stats, replay summaries and metrics.
  public var name: String {
    switch self {
    case .unknownSPI: "unknown_spi"
    case .authFailed: "auth_failed"
    case .replayed: "replayed"
    case .outsideWindow: "outside_window"
    case .malformed: "malformed"
    case .badPadding: "bad_padding"
    case .selectorMismatch: "selector_mismatch"
    case .noRoute: "no_route"
    case .sequenceExhausted: "sequence_exhausted"
    case .tooBig: "too_big"
    case .cryptoFailure: "crypto_failure"
    case .noPeer: "no_peer"
    case .dummy: "dummy"
    case .expired: "expired"
    }
  }

  /// The drop reason for an ESP error.
  public init(_ error: ESPError) {
    switch error {
    case .truncated, .malformed: self = .malformed
    case .badPadding: self = .badPadding
    case .unknownSPI: self = .unknownSPI
    case .replayed: self = .replayed
    case .outsideWindow: self = .outsideWindow
    case .authenticationFailed: self = .authFailed
    case .sequenceExhausted: self = .sequenceExhausted
    case .noRoom: self = .tooBig
    case .cryptoFailure: self = .cryptoFailure
    case .expired: self = .expired
    }
  }
}

/// One counter per ``DropReason``, in a fixed array: counting a drop is one add, no allocation.
/// Not thread-safe; owned by one loop.
public struct DropCounters: Sendable, Equatable {
  private var counts = [UInt64](repeating: 0, count: DropReason.allCases.count)

  public init() {}

  /// Counts one drop.
  public mutating func count(_ reason: DropReason) { self[reason] &+= 1 }

  /// The number of drops for `reason`.
  public subscript(reason: DropReason) -> UInt64 {
    get { counts[Int(reason.rawValue)] }
    set { counts[Int(reason.rawValue)] = newValue }
  }

  /// Drops for every reason.
  public var total: UInt64 { counts.reduce(0, &+) }

  /// Adds another set of counts (another worker's) to these.
  public mutating func add(_ other: DropCounters) {
    for i in counts.indices { counts[i] &+= other.counts[i] }
  }
}
