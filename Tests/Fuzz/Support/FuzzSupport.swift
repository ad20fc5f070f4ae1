// SPDX-License-Identifier: Apache-2.0
// What the fuzz targets share: reading structured values out of the fuzzer's bytes, invariant
// checks that stop the run with a message (libFuzzer then saves the input as a crash), and exact-
// size packet buffers, so that AddressSanitizer sees any write past either end.
import ESP

/// Stops the run when an invariant does not hold. libFuzzer records the input that did it.
@inline(never)
public func require(_ condition: Bool, _ message: @autoclosure () -> String) {
  if !condition { fatalError("fuzz invariant broken: \(message())") }
}

/// Reads fixed-size values from the front of the input; missing bytes read as zero.
public struct FuzzInput {
  public let bytes: UnsafeRawBufferPointer
  public private(set) var offset = 0

  public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
    bytes = UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size)
  }

  public mutating func byte() -> UInt8 {
    guard offset < bytes.count else { return 0 }
    defer { offset += 1 }
    return bytes[offset]
  }

  public mutating func u16() -> UInt16 { UInt16(byte()) << 8 | UInt16(byte()) }
  public mutating func u32() -> UInt32 { UInt32(u16()) << 16 | UInt32(u16()) }
  public mutating func u64() -> UInt64 { UInt64(u32()) << 32 | UInt64(u32()) }

  /// The next `n` bytes (fewer at the end of the input).
  public mutating func take(_ n: Int) -> UnsafeRawBufferPointer {
    let start = min(offset, bytes.count)
    let end = min(start + max(0, n), bytes.count)
    offset = end
    return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
  }

  /// Whether every byte was read.
  public var isEmpty: Bool { offset >= bytes.count }

  /// Everything not read yet.
  public var rest: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[min(offset, bytes.count)...]) }
}

/// A packet buffer whose allocation is exactly its capacity: a write outside it is a heap overflow
/// that AddressSanitizer reports (fuzz builds use `--sanitize=fuzzer --sanitize=address`).
public final class ExactSlot {
  public let capacity: Int
  public let base: UnsafeMutableRawPointer

  public init(capacity: Int) {
    self.capacity = capacity
    base = .allocate(byteCount: capacity, alignment: 16)
  }

  deinit { base.deallocate() }

  /// A packet holding `bytes` after `headroom` bytes, or nil when it does not fit.
  public func packet(_ bytes: UnsafeRawBufferPointer, headroom: Int) -> PacketBuffer? {
    guard headroom >= 0, headroom + bytes.count <= capacity else { return nil }
    var p = PacketBuffer(base: base, capacity: capacity, start: headroom, count: 0)
    guard p.assign(bytes, at: headroom) else { return nil }
    return p
  }

  /// Checks that a packet still describes bytes of this slot.
  public func requireInside(_ p: PacketBuffer, _ what: String) {
    require(p.base == base && p.capacity == capacity, "\(what): the packet left its slot")
    require(
      p.start >= 0 && p.count >= 0 && p.start + p.count <= capacity, "\(what): \(p.start)+\(p.count) > \(capacity)")
  }
}
