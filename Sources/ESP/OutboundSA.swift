// SPDX-License-Identifier: Apache-2.0
// An outbound security association: its keyed context, its sequence counter, and encapsulation.

import Synchronization

/// An outbound SA (RFC 4303 §3.3): seals packets in place under one SPI, numbering them.
///
/// The sequence counter never wraps (RFC 4303 §3.3.3): when it reaches 2^32 - 1 (or 2^64 - 1 with
/// ESN) every further packet fails with ``ESPError/sequenceExhausted`` until the SA is replaced.
/// The AEAD nonce's explicit IV is the 64-bit sequence number, so an IV never repeats under a key
/// (RFC 4106 §3.1 allows a counter).
///
/// Not thread-safe: one loop owns each SA and is the single writer of its counter.
public final class OutboundSA {
  /// Security Parameters Index. RFC 4303 §2.1.
  public let spi: UInt32
  /// The transform.
  public let algorithm: ESPAlgorithm
  /// Whether 64-bit extended sequence numbers are used. RFC 4303 §2.2.1.
  public let esn: Bool
  /// The last sequence number used (0 before the first packet).
  public var sequenceNumber: UInt64 { sequenceWord.load(ordering: .relaxed) }
  /// Packets and payload bytes sealed so far (for lifetimes).
  public var packets: UInt64 { packetsWord.load(ordering: .relaxed) }
  public var bytes: UInt64 { bytesWord.load(ordering: .relaxed) }
  // Counters and state that other threads read while the owning loop runs: relaxed atomics in the
  // object itself (plain loads and stores on x86-64 and arm64; this loop is the only writer).
  private let packetsWord = Atomic<UInt64>(0)
  private let bytesWord = Atomic<UInt64>(0)
  private let sequenceWord = Atomic<UInt64>(0)
  private let stateWord = Atomic<UInt64>(0)
  @usableFromInline let lastUsedWord = Atomic<UInt64>(0)
  /// When this SA last sealed a packet: the owning loop's batch timestamp (monotonic ns), 0 if never
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
  private let ivLength: Int
  private let blockSize: Int
  private let maxSequence: UInt64
  private let softSequence: UInt64
  @exclusivity(unchecked) var lifetime = LifetimeTracker()

  /// Creates an outbound SA.
  /// - Parameters:
  ///   - spi: non-zero SPI.
  ///   - algorithm: the transform.
  ///   - key: cipher key (+ salt), `algorithm.keyLength` bytes.
  ///   - authKey: HMAC key, `algorithm.authKeyLength` bytes.
  ///   - esn: 64-bit sequence numbers.
  ///   - sequenceNumber: the last number already used (`seq` in `ip xfrm`); the first packet carries the next.
  /// - Throws: ``SAError`` for a zero SPI, a wrong key length, or a starting number out of range.
  public init(
    spi: UInt32, algorithm: ESPAlgorithm, key: [UInt8], authKey: [UInt8] = [], esn: Bool = false,
    sequenceNumber: UInt64 = 0
  ) throws(SAError) {
    guard spi != 0 else { throw .zeroSPI }
    let maxSequence = esn ? ESPConstants.maxSequence64 : ESPConstants.maxSequence32
    guard sequenceNumber <= maxSequence else { throw .sequenceRange(sequenceNumber) }
    self.spi = spi
    self.algorithm = algorithm
    self.esn = esn
    self.maxSequence = maxSequence
    self.softSequence = ESPConstants.softSequenceLimit(esn: esn)
    self.ivLength = algorithm.ivLength
    self.blockSize = algorithm.blockSize
    self.context = try AEADContext(algorithm: algorithm, key: key, authKey: authKey, encrypt: true)
    sequenceWord.store(sequenceNumber, ordering: .relaxed)
  }

  /// Records the lifetime state for readers on other threads.
  func publishState() {
    stateWord.store((lifetime.softReached ? 1 : 0) | (lifetime.hardReached ? 2 : 0), ordering: .relaxed)
  }

  /// Bytes that encapsulation adds in front of the payload.
  public var headerOverhead: Int { ESPConstants.headerSize + ivLength }

  /// The most bytes encapsulation can add in all: header, IV, worst padding, trailer and ICV.
  public var maxOverhead: Int {
    headerOverhead + blockSize - 1 + ESPConstants.trailerSize + context.icvLength
  }

  /// Encapsulates the payload in place: ESP header and IV into the headroom, padding, trailer and
  /// ICV into the tailroom, payload encrypted. RFC 4303 §3.3.
  /// - Parameters:
  ///   - packet: the payload (an inner IP packet in tunnel mode, the upper-layer segment in
  ///     transport mode); on success it becomes the whole ESP packet, SPI through ICV.
  ///   - nextHeader: the protocol of the payload (4, 41, or the transport protocol).
  /// - Returns: the sequence number the packet carries.
  /// - Throws: ``ESPError/sequenceExhausted``, ``ESPError/expired`` (a hard lifetime limit was
  ///   reached), ``ESPError/noRoom`` (the packet is unchanged), or ``ESPError/cryptoFailure``.
  @discardableResult
  public func encapsulate(_ packet: inout PacketBuffer, nextHeader: UInt8) throws(ESPError) -> UInt64 {
    let padLength = ESPLayout.padLength(payloadLength: packet.count, blockSize: blockSize)
    return try seal(&packet, nextHeader: nextHeader, padLength: padLength, explicitIV: nil)
  }

  /// Encapsulation with the padding length and IV chosen by the caller (known-answer tests).
  func seal(
    _ packet: inout PacketBuffer, nextHeader: UInt8, padLength: Int, explicitIV: UnsafeRawBufferPointer?
  ) throws(ESPError) -> UInt64 {
    let payloadLength = packet.count
    let textLength = payloadLength + padLength + ESPConstants.trailerSize
    let headerLength = ESPConstants.headerSize + ivLength
    let icvLength = context.icvLength
    guard packet.headroom >= headerLength, packet.tailroom >= textLength - payloadLength + icvLength,
      padLength <= ESPConstants.maxPadLength
    else { throw .noRoom }
    let last = sequenceWord.load(ordering: .relaxed)
    guard last < maxSequence else { throw .sequenceExhausted }
    guard !lifetime.hardReached else { throw .expired }
    let seq = last + 1

    // Trailer: pad bytes 1, 2, 3, … (RFC 4303 §2.4), Pad Length, Next Header.
    let text = packet.data
    var i = 0
    while i < padLength {
      text.storeBytes(of: UInt8(truncatingIfNeeded: i + 1), toByteOffset: payloadLength + i, as: UInt8.self)
      i += 1
    }
    text.storeBytes(of: UInt8(padLength), toByteOffset: payloadLength + padLength, as: UInt8.self)
    text.storeBytes(of: nextHeader, toByteOffset: payloadLength + padLength + 1, as: UInt8.self)

    // Header: SPI, low 32 bits of the sequence number, explicit IV.
    let header = text - headerLength
    header.storeBigEndian(spi, at: 0)
    header.storeBigEndian(UInt32(truncatingIfNeeded: seq), at: 4)
    let iv = header + ESPConstants.headerSize
    if let explicitIV {
      if ivLength > 0 { iv.copyMemory(from: explicitIV.baseAddress!, byteCount: ivLength) }
    } else if algorithm.isAEAD {
      iv.storeBigEndian(seq, at: 0)
    } else if ivLength > 0 {
      guard context.makeCBCIV(counter: seq, into: iv) else { throw .cryptoFailure }
    }

    let high: UInt32? = esn ? UInt32(truncatingIfNeeded: seq >> 32) : nil
    guard
      context.seal(header: header, sequenceHigh: high, iv: iv, text: text, length: textLength, icv: text + textLength)
    else { throw .cryptoFailure }
    packet.start -= headerLength
    packet.count = headerLength + textLength + icvLength
    let packets = packetsWord.load(ordering: .relaxed) &+ 1
    let bytes = bytesWord.load(ordering: .relaxed) &+ UInt64(payloadLength)
    sequenceWord.store(seq, ordering: .relaxed)
    packetsWord.store(packets, ordering: .relaxed)
    bytesWord.store(bytes, ordering: .relaxed)
    if packets >= lifetime.nextPackets || bytes >= lifetime.nextBytes {
      lifetime.crossed(packets: packets, bytes: bytes)
      publishState()
    }
    if seq >= softSequence {
      // RFC 4303 §3.3.3: never wrap. Warn at 15/16 of the space; the last number stops the SA.
      if seq == maxSequence { lifetime.hard(.sequence) } else { lifetime.soft(.sequence) }
      publishState()
    }
    return seq
  }
}

extension OutboundSA {
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
  /// Whether a hard limit was reached: the SA carries no more packets.
  public var isExpired: Bool { lifetime.hardReached }
}
