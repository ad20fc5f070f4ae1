// SPDX-License-Identifier: Apache-2.0
// A liburing ring and a provided-buffer ring, owned and torn down in deinit.
import CLinux
import CURing

#if canImport(Glibc)
  import Glibc
#endif

/// An io_uring instance. Single issuer: only the loop's thread touches it.
final class URing {
  @exclusivity(unchecked) var ring = io_uring()
  /// The setup flags the kernel accepted.
  let flags: UInt32

  /// Creates a ring, asking for SINGLE_ISSUER | DEFER_TASKRUN (completions run only when the loop
  /// waits, on its own thread) and falling back to plain flags if the kernel refuses.
  init(entries: UInt32) throws(SystemError) {
    var accepted: UInt32 = 0
    var result: Int32 = -EINVAL
    for f in [UInt32(IORING_SETUP_SINGLE_ISSUER) | UInt32(IORING_SETUP_DEFER_TASKRUN), UInt32(0)] {
      var params = io_uring_params()
      params.flags = f
      result = io_uring_queue_init_params(entries, &ring, &params)
      if result == 0 {
        accepted = f
        break
      }
    }
    guard result == 0 else { throw SystemError("cannot create an io_uring", errno: -result) }
    flags = accepted
  }

  deinit { io_uring_queue_exit(&ring) }

  /// A free submission entry, submitting what is queued if the queue is full.
  func sqe() -> UnsafeMutablePointer<io_uring_sqe>? {
    if let s = io_uring_get_sqe(&ring) { return s }
    // Its result is the get below: a submit that failed leaves the queue full, so that get
    // returns nil, which every caller counts as a drop.
    _ = io_uring_submit(&ring)
    return io_uring_get_sqe(&ring)
  }
}

/// A ring of `count` receive buffers of `size` bytes that the kernel picks from (multishot receive).
final class ProvidedBuffers {
  let group: UInt16
  let count: Int
  let size: Int
  let memory: UnsafeMutableRawPointer
  let ringMemory: UnsafeMutableRawPointer
  var bufRing: UnsafeMutablePointer<io_uring_buf_ring> { ringMemory.assumingMemoryBound(to: io_uring_buf_ring.self) }
  let mask: Int32
  /// Buffers given back since the last publish.
  var pending: Int32 = 0

  init(ring: URing, group: UInt16, count: Int, size: Int) throws(SystemError) {
    precondition(count > 0 && count & (count - 1) == 0 && count <= 32768, "buffer count must be a power of two")
    self.group = group
    self.count = count
    self.size = size
    memory = PacketMemory.allocate(count * size)
    ringMemory = .allocate(byteCount: count * MemoryLayout<io_uring_buf>.stride, alignment: 4096)
    ringMemory.initializeMemory(as: UInt8.self, repeating: 0, count: count * MemoryLayout<io_uring_buf>.stride)
    mask = io_uring_buf_ring_mask(UInt32(count))
    var reg = io_uring_buf_reg()
    reg.ring_addr = UInt64(UInt(bitPattern: ringMemory))
    reg.ring_entries = UInt32(count)
    reg.bgid = group
    let r = io_uring_register_buf_ring(&ring.ring, &reg, 0)
    guard r == 0 else {
      memory.deallocate()
      ringMemory.deallocate()
      throw SystemError("cannot register an io_uring buffer ring", errno: -r)
    }
    io_uring_buf_ring_init(bufRing)
    for i in 0..<count { give(UInt16(i)) }
    publish()
  }

  deinit {
    memory.deallocate()
    ringMemory.deallocate()
  }

  func buffer(_ id: UInt16) -> UnsafeMutableRawPointer { memory + Int(id) * size }

  /// Returns a buffer to the kernel (takes effect at the next ``publish()``).
  func give(_ id: UInt16) {
    io_uring_buf_ring_add(bufRing, buffer(id), UInt32(size), id, mask, pending)
    pending += 1
  }

  /// Makes the given-back buffers visible to the kernel.
  func publish() {
    guard pending > 0 else { return }
    io_uring_buf_ring_advance(bufRing, pending)
    pending = 0
  }
}
