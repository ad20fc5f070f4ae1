// SPDX-License-Identifier: Apache-2.0
// Words that the thread owning an object writes and any thread may read: counters and published
// state, readable by `stats` and `list` without stopping the packet loop.
import CAtomics

/// A fixed block of 64-bit words with a single writer (the loop that owns the object) and any
/// number of readers. Reads and writes are relaxed atomics (CAtomics.h): on x86-64 and arm64 the
/// same plain loads and stores a `+=` compiles to, and race-free under ThreadSanitizer. The owner
/// frees the block with ``free()``.
public struct SharedWords: @unchecked Sendable {
  public let base: UnsafeMutablePointer<UInt64>

  /// Allocates `count` zeroed words.
  public init(count: Int) {
    base = .allocate(capacity: count)
    base.initialize(repeating: 0, count: count)
  }

  /// Releases the words (the owner's deinit).
  public func free() { base.deallocate() }

  /// Word `i` (any thread).
  @inline(__always) public func load(_ i: Int) -> UInt64 { espd_load(base + i) }
  /// Sets word `i` (its writer only).
  @inline(__always) public func store(_ i: Int, _ v: UInt64) { espd_store(base + i, v) }
  /// Adds to word `i` (its writer only: not an atomic read-modify-write).
  @inline(__always) public func add(_ i: Int, _ v: UInt64) { espd_add(base + i, v) }
  /// Word `i` with acquire ordering (a sequence lock's reader).
  @inline(__always) public func loadAcquire(_ i: Int) -> UInt64 { espd_load_acquire(base + i) }
  /// Sets word `i` with release ordering (a sequence lock's writer).
  @inline(__always) public func storeRelease(_ i: Int, _ v: UInt64) { espd_store_release(base + i, v) }
}
