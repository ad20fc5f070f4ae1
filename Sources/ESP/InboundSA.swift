// SPDX-License-Identifier: Apache-2.0
// An inbound security association: its keyed context, its replay window, and decapsulation.

import Synchronization

/// What decapsulation found behind the ESP header.
public struct ESPPayload: Equatable, Sendable {
  /// The Next Header field: 4 or 41 in tunnel mode, the transport protocol in transport mode,
  /// 59 for a dummy packet (RFC 4303 §2.6).
  public let nextHeader: UInt8
  /// The full (ESN-inferred) sequence number the packet carried.
  public let sequenceNumber: UInt64
}

/// An inbound SA (RFC 4303 §3.4): verifies, decrypts and de-duplicates packets for one SPI.
///
/// Not thread-safe: one loop owns each SA and is the single writer of its replay window.
public final class InboundSA {
  /// Security Parameters Index. RFC 4303 §2.1.
  public let spi: UInt32
  /// The transform.
  public let algorithm: ESPAlgorithm
  /// Whether 64-bit extended sequence numbers are used. RFC 4303 §2.2.1.
  public let esn: Bool
  /// The anti-replay window.
  @exclusivity(unchecked) public private(set) var replay: ReplayWindow
  /// Packets and payload bytes accepted so far (for lifetimes).
  public var packets: UInt64 { packetsWord.load(ordering: .relaxed) }
  public var bytes: UInt64 { bytesWord.load(ordering: .relaxed) }
  // Counters and state that other threads read while the owning loop runs: relaxed atomics in the
  // object itself (plain loads and stores on x86-64 and arm64; this loop is the only writer).
  private let packetsWord = Atomic<UInt64>(0)
  private let bytesWord = Atomic<UInt64>(0)
  private let sequenceWord = Atomic<UInt64>(0)
  private let stateWord = Atomic<UInt64>(0)
  @usableFromInline let lastUsedWord = Atomic<UInt64>(0)
  /// When this SA last opened an authenticated packet: the owning loop's batch timestamp (monotonic ns), 0 if never
  /// (any thread; `query_sa`'s `idle_ms`).
  public var lastUsed: UInt64 { lastUsedWord.load(ordering: .relaxed) }
  /// Records a use at `time`, the batch's timestamp (owning loop only: no clock read per packet).
  @inlinable
  public func markUsed(_ time: UInt64) { lastUsedWord.store(time, ordering: .relaxed) }
  /// Outbound: the last sequence number used; inbound: the highest one accepted (any thread).
  public var publishedSequence: UInt64 { sequenceWord.load(ordering: .relaxed) }
  /// 1: a soft limit was reached; 2: a hard one (any thread).
  public var publishedState: UInt64 { stateWord.load(ordering: .relaxed) }

  let context: AEADContext
  @exclusivity(unchecked) var lifetime = LifetimeTracker()
  private let ivLength: Int
  private let blockSize: Int

  /// Creates an inbound SA.
  /// - Parameters:
  ///   - spi: non-zero SPI.
  ///   - algorithm: the transform.
  ///   - key: cipher key (+ salt), `algorithm.keyLength` bytes.
  ///   - authKey: HMAC key, `algorithm.authKeyLength` bytes.
  ///   - esn: 64-bit sequence numbers.
  ///   - replayWindow: window size in packets (0 disables anti-replay).
  ///   - replaySequence: the highest number already seen (`replay_seq`); a packet carrying it is a replay.
  /// - Throws: ``SAError``.
  public init(
    spi: UInt32, algorithm: ESPAlgorithm, key: [UInt8], authKey: [UInt8] = [], esn: Bool = false,
    replayWindow: Int = ESPConstants.defaultReplayWindow, replaySequence: UInt64 = 0
  ) throws(SAError) {
    guard spi != 0 else { throw .zeroSPI }
    guard replayWindow >= 0, replayWindow <= ESPConstants.maxReplayWindow else { throw .replayWindow(replayWindow) }
    guard esn || replaySequence <= ESPConstants.maxSequence32 else { throw .sequenceRange(replaySequence) }
    self.spi = spi
    self.algorithm = algorithm
    self.esn = esn
    self.ivLength = algorithm.ivLength
    self.blockSize = algorithm.blockSize
    self.replay = ReplayWindow(size: replayWindow, esn: esn, highest: replaySequence)
    self.context = try AEADContext(algorithm: algorithm, key: key, authKey: authKey, encrypt: false)
    sequenceWord.store(replaySequence, ordering: .relaxed)
  }

  /// Records the lifetime state for readers on other threads.
  func publishState() {
    stateWord.store((lifetime.softReached ? 1 : 0) | (lifetime.hardReached ? 2 : 0), ordering: .relaxed)
  }

  /// Decapsulates in place: replay check, ICV verification and decryption, padding check, then
  /// replay commit (RFC 4303 §3.4). A packet that fails any step changes no state of the SA.
  /// - Parameter packet: the ESP packet, SPI through ICV; on success it becomes the payload.
  /// - Returns: the Next Header and the full sequence number.
  /// - Throws: ``ESPError/truncated``, ``ESPError/malformed``, ``ESPError/unknownSPI``,
  ///   ``ESPError/replayed``, ``ESPError/outsideWindow``, ``ESPError/authenticationFailed``,
  ///   ``ESPError/badPadding``, ``ESPError/expired`` (a hard lifetime limit was reached).
  public func decapsulate(_ packet: inout PacketBuffer) throws(ESPError) -> ESPPayload {
    guard !lifetime.hardReached else { throw .expired }
    let headerLength = ESPConstants.headerSize + ivLength
    let icvLength = context.icvLength
    guard packet.count >= headerLength + ESPConstants.trailerSize + icvLength else { throw .truncated }
    let textLength = packet.count - headerLength - icvLength
    // AES-CBC decrypts whole blocks only; AEAD ciphertext needs only the trailer.
    guard textLength & (blockSize - 1) == 0 || blockSize == ESPConstants.minimumAlignment else {
      throw .malformed
    }
    let header = packet.data
    guard header.loadBigEndianUInt32(at: 0) == spi else { throw .unknownSPI }

    let seq: UInt64
    switch replay.check(header.loadBigEndianUInt32(at: 4)) {
    case .accept(let s): seq = s
    case .replayed: throw .replayed
    case .outsideWindow: throw .outsideWindow
    }

    let iv = header + ESPConstants.headerSize
    let text = iv + ivLength
    let high: UInt32? = esn ? UInt32(truncatingIfNeeded: seq >> 32) : nil
    guard
      context.open(header: header, sequenceHigh: high, iv: iv, text: text, length: textLength, icv: text + textLength)
    else { throw .authenticationFailed }

    // Trailer: Pad Length and Next Header, then the pad bytes must read 1, 2, 3, … (RFC 4303 §2.4).
    let padLength = Int(text.load(fromByteOffset: textLength - 2, as: UInt8.self))
    let nextHeader = text.load(fromByteOffset: textLength - 1, as: UInt8.self)
    let payloadLength = textLength - ESPConstants.trailerSize - padLength
    guard payloadLength >= 0 else { throw .badPadding }
    var i = 0
    while i < padLength {
      guard text.load(fromByteOffset: payloadLength + i, as: UInt8.self) == UInt8(truncatingIfNeeded: i + 1) else {
        throw .badPadding
      }
      i += 1
    }

    guard replay.commit(seq) else { throw .replayed }
    packet.start += headerLength
    packet.count = payloadLength
    let packets = packetsWord.load(ordering: .relaxed) &+ 1
    let bytes = bytesWord.load(ordering: .relaxed) &+ UInt64(payloadLength)
    packetsWord.store(packets, ordering: .relaxed)
    bytesWord.store(bytes, ordering: .relaxed)
    sequenceWord.store(replay.highest, ordering: .relaxed)
    if packets >= lifetime.nextPackets || bytes >= lifetime.nextBytes {
      lifetime.crossed(packets: packets, bytes: bytes)
      publishState()
    }
    return ESPPayload(nextHeader: nextHeader, sequenceNumber: seq)
  }
}

extension InboundSA {
  /// Sets the SA's lifetime limits (before its first packet, or to change them later).
  public func setLimits(_ limits: SALimits) {
    lifetime.set(limits)
    publishState()
  }
  /// The limits in force.
  public var limits: SALimits { lifetime.limits }
  /// Whether a lifetime event is waiting in ``takeLifetimeEvent()``.
  public var hasLifetimeEvent: Bool { lifetime.hasPendingEvent }
  /// The next lifetime event raised and not yet taken.
  public func takeLifetimeEvent() -> LifetimeEvent? { lifetime.takeEvent() }
  /// Raises the time-based events whose deadline `now` has reached.
  public func checkLifetime(now: UInt64) {
    lifetime.check(now: now)
    publishState()
  }
  /// Whether a soft limit was reached (time to rekey).
  public var isSoftExpired: Bool { lifetime.softReached }
  /// Whether a hard limit was reached: the SA accepts no more packets.
  public var isExpired: Bool { lifetime.hardReached }
}
