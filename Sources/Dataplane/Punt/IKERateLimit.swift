// SPDX-License-Identifier: Apache-2.0
// How much IKE reaches the IKE daemon: a token bucket per source address, so that one flooding
// address cannot take the whole budget and shut every other peer's IKE out, and one for all.
import ESP

/// A token bucket: `perSecond` tokens a second, at most `perSecond` saved (one second of burst).
struct TokenBucket {
  let perSecond: UInt64
  private var tokens: UInt64
  private var last: UInt64 = 0

  /// - Parameter perSecond: 1 ... 1e9 (clamped).
  init(perSecond: Int) {
    self.perSecond = UInt64(min(max(1, perSecond), 1_000_000_000))
    tokens = self.perSecond
  }

  /// Takes one token if there is one.
  /// - Parameter now: monotonic nanoseconds.
  mutating func take(now: UInt64) -> Bool {
    if now > last {
      let elapsed = now - last
      // Whole tokens earned since `last`; the rest of the time is kept for the next call.
      let earned = elapsed >= 1_000_000_000 ? perSecond : elapsed * perSecond / 1_000_000_000
      if earned > 0 {
        tokens = min(perSecond, tokens + earned)
        last = earned == perSecond ? now : last + earned * 1_000_000_000 / perSecond
      }
    }
    guard tokens > 0 else { return false }
    tokens -= 1
    return true
  }
}

/// The per-source buckets (a fixed table: a source takes its slot over from whoever hashed there
/// before, with a full bucket) and the global bucket.
struct IKERateLimiter {
  static let slots = 4096
  private var global: TokenBucket
  private let perSource: Int
  private var keys: [UInt64]
  private var buckets: [TokenBucket]
  /// Datagrams refused by the global bucket, and by their source's bucket.
  private(set) var globalLimited: UInt64 = 0
  private(set) var sourceLimited: UInt64 = 0

  init(perSecond: Int, perSource: Int) {
    global = TokenBucket(perSecond: perSecond)
    self.perSource = perSource
    keys = [UInt64](repeating: 0, count: IKERateLimiter.slots)
    buckets = [TokenBucket](repeating: TokenBucket(perSecond: perSource), count: IKERateLimiter.slots)
  }

  /// Whether one more IKE datagram from `source` may go to the daemon now.
  mutating func admit(_ source: IPAddress, now: UInt64) -> Bool {
    let key = IKERateLimiter.key(source)
    let slot = Int(truncatingIfNeeded: key >> 52) & (IKERateLimiter.slots - 1)
    if keys[slot] != key {
      keys[slot] = key
      buckets[slot] = TokenBucket(perSecond: perSource)
    }
    guard buckets[slot].take(now: now) else {
      sourceLimited &+= 1
      return false
    }
    guard global.take(now: now) else {
      globalLimited &+= 1
      return false
    }
    return true
  }

  /// A 64-bit hash of the address (FNV-1a over its bytes, then a final mix); never 0.
  static func key(_ a: IPAddress) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    switch a {
    case .v4(let v):
      h = (h ^ UInt64(v)) &* 0x0000_0100_0000_01b3
    case .v6(let hi, let lo):
      h = (h ^ hi) &* 0x0000_0100_0000_01b3
      h = (h ^ lo) &* 0x0000_0100_0000_01b3
      h = (h ^ 6) &* 0x0000_0100_0000_01b3
    }
    h ^= h >> 29
    h = h &* 0xbf58_476d_1ce4_e5b9
    h ^= h >> 32
    return h | 1
  }
}
