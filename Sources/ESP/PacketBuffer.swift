// SPDX-License-Identifier: Apache-2.0
// A non-owning view of one packet inside a preallocated slot, with room on both sides.

/// One packet in a slot of preallocated memory: `capacity` bytes at `base`, of which the packet
/// occupies `start ..< start + count`. The bytes before are headroom, the bytes after tailroom, so
/// headers and trailers can be added in place.
///
/// Trivially copyable and non-owning: whoever allocated `base` (a loop's slab, a test's array)
/// keeps it alive. Not thread-safe; owned by one loop.
public struct PacketBuffer {
  /// Start of the slot.
  public let base: UnsafeMutableRawPointer
  /// Size of the slot in bytes.
  public let capacity: Int
  /// Offset of the first packet byte from `base`.
  public var start: Int
  /// Bytes of packet data.
  public var count: Int

  /// Creates a view of `count` packet bytes at `base + start` in a slot of `capacity` bytes.
  /// - Precondition: `0 <= start`, `0 <= count`, `start + count <= capacity`.
  @inlinable
  public init(base: UnsafeMutableRawPointer, capacity: Int, start: Int, count: Int) {
    precondition(start >= 0 && count >= 0 && start + count <= capacity, "PacketBuffer out of its slot")
    self.base = base
    self.capacity = capacity
    self.start = start
    self.count = count
  }

  /// Bytes free in front of the packet.
  @inlinable public var headroom: Int { start }
  /// Bytes free after the packet.
  @inlinable public var tailroom: Int { capacity - start - count }
  /// Offset one past the last packet byte.
  @inlinable public var end: Int { start + count }
  /// Pointer to the first packet byte.
  @inlinable public var data: UnsafeMutableRawPointer { base + start }

  /// The packet bytes, for reading.
  @inlinable public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: data, count: count) }

  /// Grows the packet at the front by `n` bytes of headroom (contents undefined).
  /// - Returns: false, leaving the packet unchanged, if the headroom is too small.
  @inlinable
  public mutating func prepend(_ n: Int) -> Bool {
    guard n >= 0, n <= start else { return false }
    start -= n
    count += n
    return true
  }

  /// Removes `n` bytes from the front.
  /// - Returns: false, leaving the packet unchanged, if it is shorter than `n`.
  @inlinable
  public mutating func trimFront(_ n: Int) -> Bool {
    guard n >= 0, n <= count else { return false }
    start += n
    count -= n
    return true
  }

  /// Copies `bytes` into the slot as the packet, at offset `start`.
  /// - Returns: false if they do not fit between `start` and `capacity`.
  @inlinable
  public mutating func assign(_ bytes: UnsafeRawBufferPointer, at start: Int) -> Bool {
    guard start >= 0, start + bytes.count <= capacity else { return false }
    if let src = bytes.baseAddress, bytes.count > 0 {
      (base + start).copyMemory(from: src, byteCount: bytes.count)
    }
    self.start = start
    self.count = bytes.count
    return true
  }
}
