// SPDX-License-Identifier: Apache-2.0
// SA lifetimes (RFC 4301 §4.4.2.1): soft and hard limits in packets, bytes, time and sequence
// numbers, and the events an SA raises when it crosses them. Pure: time is passed in.

/// What made a lifetime event fire.
public enum LifetimeReason: UInt8, Sendable, CaseIterable {
  case packets, bytes, seconds, sequence

  /// The name events and logs use.
  public var name: String {
    switch self {
    case .packets: "packets"
    case .bytes: "bytes"
    case .seconds: "seconds"
    case .sequence: "sequence"
    }
  }
}

/// One lifetime event: soft (rekey soon) or hard (the SA has stopped).
public struct LifetimeEvent: Sendable, Equatable {
  public let hard: Bool
  public let reason: LifetimeReason
  public init(hard: Bool, reason: LifetimeReason) {
    self.hard = hard
    self.reason = reason
  }
}

/// An SA's limits. `UInt64.max` means no limit. Deadlines are in the caller's clock (the dataplane
/// uses monotonic nanoseconds).
public struct SALimits: Sendable, Equatable {
  public var packetsSoft: UInt64 = .max
  public var packetsHard: UInt64 = .max
  public var bytesSoft: UInt64 = .max
  public var bytesHard: UInt64 = .max
  public var softDeadline: UInt64 = .max
  public var hardDeadline: UInt64 = .max
  public init() {}

  /// Whether a deadline is set (the SA must be checked against the clock).
  public var isTimed: Bool { softDeadline != .max || hardDeadline != .max }
}

/// The lifetime state machine of one SA: each of soft and hard fires once, whatever crossed first.
/// A hard event stops the SA: every later packet is refused with ``ESPError/expired``.
///
/// Per packet it costs two compares (``crossed(packets:bytes:)`` runs only when a limit is reached).
struct LifetimeTracker {
  private(set) var limits = SALimits()
  /// The next packet and byte counts at which something fires (soft limits, then hard).
  private(set) var nextPackets: UInt64 = .max
  private(set) var nextBytes: UInt64 = .max
  private(set) var softReached = false
  private(set) var hardReached = false
  /// Events raised and not yet taken (at most one soft and one hard in an SA's life).
  private var pendingSoft: LifetimeReason? = nil
  private var pendingHard: LifetimeReason? = nil

  var hasPendingEvent: Bool { pendingSoft != nil || pendingHard != nil }

  mutating func set(_ limits: SALimits) {
    self.limits = limits
    rearm()
  }

  /// The next pending event, soft before hard.
  mutating func takeEvent() -> LifetimeEvent? {
    if let r = pendingSoft {
      pendingSoft = nil
      return LifetimeEvent(hard: false, reason: r)
    }
    if let r = pendingHard {
      pendingHard = nil
      return LifetimeEvent(hard: true, reason: r)
    }
    return nil
  }

  /// Called when a count reached ``nextPackets`` or ``nextBytes``.
  mutating func crossed(packets: UInt64, bytes: UInt64) {
    if packets >= limits.packetsSoft || bytes >= limits.bytesSoft {
      soft(packets >= limits.packetsSoft ? .packets : .bytes)
    }
    if packets >= limits.packetsHard || bytes >= limits.bytesHard {
      hard(packets >= limits.packetsHard ? .packets : .bytes)
    }
  }

  /// Fires what the clock has reached.
  mutating func check(now: UInt64) {
    if now >= limits.softDeadline { soft(.seconds) }
    if now >= limits.hardDeadline { hard(.seconds) }
  }

  /// Raises the soft event (once).
  mutating func soft(_ reason: LifetimeReason) {
    guard !softReached, !hardReached else { return }
    softReached = true
    pendingSoft = reason
    rearm()
  }

  /// Raises the hard event (once) and stops the SA. A soft event not yet raised is skipped: hard says more.
  mutating func hard(_ reason: LifetimeReason) {
    guard !hardReached else { return }
    hardReached = true
    softReached = true
    pendingHard = reason
    rearm()
  }

  private mutating func rearm() {
    if hardReached {
      nextPackets = .max
      nextBytes = .max
    } else if softReached {
      nextPackets = limits.packetsHard
      nextBytes = limits.bytesHard
    } else {
      nextPackets = min(limits.packetsSoft, limits.packetsHard)
      nextBytes = min(limits.bytesSoft, limits.bytesHard)
    }
  }
}

extension ESPConstants {
  /// The soft sequence-number limit: an outbound SA raises a soft `sequence` event once it has used
  /// 15/16 of its sequence space (0xF0000000 without ESN), and a hard one with its last number.
  public static func softSequenceLimit(esn: Bool) -> UInt64 {
    let max = esn ? maxSequence64 : maxSequence32
    return max - max / 16
  }
}
