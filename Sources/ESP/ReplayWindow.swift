// SPDX-License-Identifier: Apache-2.0
// The anti-replay window of an inbound SA (RFC 4303 §3.4.3) as an RFC 6479 ring of 64-bit blocks,
// with the extended sequence number inference of RFC 4303 Appendix A.

/// What the window says about a received sequence number, before the ICV is checked.
public enum ReplayVerdict: Equatable, Sendable {
  /// Not seen yet and inside (or right of) the window: authenticate it with this full sequence number.
  case accept(UInt64)
  /// Already received.
  case replayed
  /// Left of the window (or, with ESN, no 64-bit number can be inferred for it).
  case outsideWindow
}

/// An anti-replay window of `size` packets, right edge at `highest`.
///
/// The bitmap is a ring of 64-bit blocks (RFC 6479): advancing the right edge clears whole blocks
/// instead of shifting bits, so the cost does not grow with the window size.
///
/// ```
///   block:   k-3      k-2      k-1       k  (k = highest >> 6)
///          [........|........|........|.....H..]   ring slot = block & mask
///               ^ highest - size + 1 (left edge)  H = highest, always marked as seen
/// ```
///
/// Use it in two steps (RFC 4303 §3.4.3): ``check(_:)`` before decrypting, ``commit(_:)`` only after
/// the ICV verified, so a forged packet never moves the window.
///
/// Owns its bitmap (freed in `deinit`); not thread-safe; owned by one loop.
public struct ReplayWindow: ~Copyable {
  /// Window size in packets; 0 disables replay protection (sequence numbers are still tracked for ESN).
  public let size: UInt64
  /// Whether the SA uses 64-bit extended sequence numbers (RFC 4303 §2.2.1).
  public let esn: Bool
  /// The highest sequence number authenticated so far (the window's right edge).
  public private(set) var highest: UInt64
  /// Ring of `mask + 1` blocks; each bit stands for one sequence number.
  private let blocks: UnsafeMutablePointer<UInt64>
  private let mask: UInt64

  /// Creates a window.
  /// - Parameters:
  ///   - size: packets, `0 ... ESPConstants.maxReplayWindow`.
  ///   - esn: whether sequence numbers are 64 bits wide on the SA.
  ///   - highest: the highest sequence number already seen (`replay_seq` in `ip xfrm`); a packet that
  ///     carries exactly this number is a replay.
  public init(size: Int, esn: Bool, highest: UInt64 = 0) {
    precondition(size >= 0 && size <= ESPConstants.maxReplayWindow, "replay window size out of range")
    self.size = UInt64(size)
    self.esn = esn
    self.highest = esn ? highest : highest & 0xFFFF_FFFF
    // The window spans at most ceil(size / 64) + 1 blocks; a power of two makes the slot a mask.
    let needed = (size + 63) / 64 + 1
    var count = 1
    while count < needed { count <<= 1 }
    self.mask = UInt64(count - 1)
    self.blocks = .allocate(capacity: count)
    blocks.initialize(repeating: 0, count: count)
    blocks[Int((self.highest >> 6) & mask)] = 1 << (self.highest & 63)
  }

  deinit { blocks.deallocate() }

  /// Bytes of memory the bitmap uses.
  public var bitmapBytes: Int { Int(mask + 1) * 8 }

  /// The bitmap's words, copied: tests and fuzz targets compare them to prove a dropped packet
  /// left the window as it was.
  var bitmapWords: [UInt64] { (0...Int(mask)).map { blocks[$0] } }

  /// Checks a received sequence number without changing the window.
  /// - Parameter sequenceLow: the 32-bit Sequence Number field of the packet.
  /// - Returns: ``ReplayVerdict/accept(_:)`` with the full (ESN-inferred) number to authenticate,
  ///   or why the packet must be dropped.
  public func check(_ sequenceLow: UInt32) -> ReplayVerdict {
    let seq: UInt64
    if esn {
      guard let s = inferSequence(sequenceLow) else { return .outsideWindow }
      seq = s
    } else {
      seq = UInt64(sequenceLow)
    }
    if size == 0 || seq > highest { return .accept(seq) }
    if highest - seq >= size { return .outsideWindow }
    return isMarked(seq) ? .replayed : .accept(seq)
  }

  /// Marks an authenticated sequence number as seen, moving the right edge if it is new.
  /// - Parameter seq: a number that ``check(_:)`` accepted and whose ICV verified.
  /// - Returns: false if it was already marked, or fell out of the window since it was checked
  ///   (two copies of one packet in one batch); the packet must then be dropped as a replay.
  public mutating func commit(_ seq: UInt64) -> Bool {
    if size == 0 {
      if seq > highest { highest = seq }
      return true
    }
    if seq > highest {
      let current = highest >> 6
      let target = seq >> 6
      let advance = target - current
      if advance > mask {
        clearAll()
      } else if advance > 0 {
        var i: UInt64 = 1
        while i <= advance {
          setBlock((current &+ i) & mask, 0)
          i += 1
        }
      }
      highest = seq
    } else if highest - seq >= size {
      return false
    }
    let slot = (seq >> 6) & mask
    let bit: UInt64 = 1 << (seq & 63)
    let b = block(slot)
    if b & bit != 0 { return false }
    setBlock(slot, b | bit)
    return true
  }

  /// Infers the high 32 bits of a 64-bit sequence number from its low 32 bits and the window.
  /// RFC 4303 Appendix A2.1: the number is placed in the 2^32-wide span that starts at the left
  /// edge of the window (`highest - size + 1`).
  /// - Returns: the full number, or nil if it would lie before sequence number 0 or past 2^64 - 1.
  public func inferSequence(_ sequenceLow: UInt32) -> UInt64? {
    // With replay protection off there is no window: place the number nearest to `highest`.
    let w: UInt64 = size == 0 ? 1 << 31 : size
    let tl = UInt32(truncatingIfNeeded: highest)
    var th = highest >> 32
    let bottom = tl &- UInt32(truncatingIfNeeded: w - 1)
    if UInt64(tl) >= w - 1 {
      // Case A: the whole window lies in one 2^32 subspace.
      if sequenceLow < bottom {
        guard th < 0xFFFF_FFFF else { return nil }
        th += 1
      }
    } else {
      // Case B: the window spans the end of the previous subspace and the start of this one.
      if sequenceLow >= bottom {
        guard th > 0 else { return nil }
        th -= 1
      }
    }
    return th << 32 | UInt64(sequenceLow)
  }

  func isMarked(_ seq: UInt64) -> Bool {
    block((seq >> 6) & mask) & (1 << (seq & 63)) != 0
  }

  func block(_ slot: UInt64) -> UInt64 { blocks[Int(slot)] }

  func setBlock(_ slot: UInt64, _ value: UInt64) { blocks[Int(slot)] = value }

  func clearAll() { blocks.update(repeating: 0, count: Int(mask + 1)) }
}
