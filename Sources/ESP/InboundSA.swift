// SPDX-License-Identifier: Apache-2.0
// An inbound security association: its keyed context, its replay window, and decapsulation.

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
  public private(set) var replay: ReplayWindow
  /// Packets and payload bytes accepted so far (for lifetimes).
  public var packets: UInt64 { published.load(SAWord.packets) }
  public var bytes: UInt64 { published.load(SAWord.bytes) }
  /// Counters and state that other threads read while the owning loop runs (``SAWord``).
  public let published: SharedWords

  let context: AEADContext
  var lifetime = LifetimeTracker()
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
    published = SharedWords(count: SAWord.count)
    do throws(SAError) {
      self.context = try AEADContext(algorithm: algorithm, key: key, authKey: authKey, encrypt: false)
    } catch {
      published.free()
      throw error
    }
    published.store(SAWord.sequence, replaySequence)
  }

  deinit { published.free() }

  /// Records the lifetime state for readers on other threads.
  func publishState() {
    published.store(SAWord.state, (lifetime.softReached ? 1 : 0) | (lifetime.hardReached ? 2 : 0))
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
    let packets = published.load(SAWord.packets) &+ 1
    let bytes = published.load(SAWord.bytes) &+ UInt64(payloadLength)
    published.store(SAWord.packets, packets)
    published.store(SAWord.bytes, bytes)
    published.store(SAWord.sequence, replay.highest)
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
  /// Records the time of the last packet (monotonic ns; the loop calls it once per batch).
  public func noteUse(now: UInt64) { published.store(SAWord.lastUsed, now) }
  /// Whether a soft limit was reached (time to rekey).
  public var isSoftExpired: Bool { lifetime.softReached }
  /// Whether a hard limit was reached: the SA accepts no more packets.
  public var isExpired: Bool { lifetime.hardReached }
}
