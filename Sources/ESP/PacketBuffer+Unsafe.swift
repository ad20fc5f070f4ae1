// SPDX-License-Identifier: Apache-2.0
// Big-endian loads and stores into a packet's bytes; callers check bounds before calling.

extension PacketBuffer {
  /// Loads the byte at `offset` from the packet start. The caller has checked `offset < count`.
  @inlinable public func uint8(at offset: Int) -> UInt8 { data.load(fromByteOffset: offset, as: UInt8.self) }

  /// Loads a big-endian 16-bit value at `offset` from the packet start (unaligned).
  @inlinable public func uint16(at offset: Int) -> UInt16 { data.loadBigEndianUInt16(at: offset) }

  /// Loads a big-endian 32-bit value at `offset` from the packet start (unaligned).
  @inlinable public func uint32(at offset: Int) -> UInt32 { data.loadBigEndianUInt32(at: offset) }

  /// Stores a byte at `offset` from the packet start.
  @inlinable public func setUInt8(_ v: UInt8, at offset: Int) {
    data.storeBytes(of: v, toByteOffset: offset, as: UInt8.self)
  }

  /// Stores a big-endian 16-bit value at `offset` from the packet start (unaligned).
  @inlinable public func setUInt16(_ v: UInt16, at offset: Int) { data.storeBigEndian(v, at: offset) }

  /// Stores a big-endian 32-bit value at `offset` from the packet start (unaligned).
  @inlinable public func setUInt32(_ v: UInt32, at offset: Int) { data.storeBigEndian(v, at: offset) }
}

extension UnsafeRawPointer {
  /// Loads a big-endian `UInt16` at `offset`, unaligned.
  @inlinable public func loadBigEndianUInt16(at offset: Int) -> UInt16 {
    UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
  }
  /// Loads a big-endian `UInt32` at `offset`, unaligned.
  @inlinable public func loadBigEndianUInt32(at offset: Int) -> UInt32 {
    UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
  }
  /// Loads a big-endian `UInt64` at `offset`, unaligned.
  @inlinable public func loadBigEndianUInt64(at offset: Int) -> UInt64 {
    UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
  }
}

extension UnsafeMutableRawPointer {
  /// Loads a big-endian `UInt16` at `offset`, unaligned.
  @inlinable public func loadBigEndianUInt16(at offset: Int) -> UInt16 {
    UnsafeRawPointer(self).loadBigEndianUInt16(at: offset)
  }
  /// Loads a big-endian `UInt32` at `offset`, unaligned.
  @inlinable public func loadBigEndianUInt32(at offset: Int) -> UInt32 {
    UnsafeRawPointer(self).loadBigEndianUInt32(at: offset)
  }
  /// Loads a big-endian `UInt64` at `offset`, unaligned.
  @inlinable public func loadBigEndianUInt64(at offset: Int) -> UInt64 {
    UnsafeRawPointer(self).loadBigEndianUInt64(at: offset)
  }
  /// Stores `value` big-endian at `offset`, unaligned.
  @inlinable public func storeBigEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
    storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
  }
}
