// SPDX-License-Identifier: Apache-2.0
// Packets one worker passes to another: a single-producer, single-consumer ring of packet copies
// with their addressing. The producer publishes once per batch and the consumer releases once per
// drain: two atomic stores per batch, no lock (DESIGN.md "Speed": each SA has a single writer).
import Forwarding
import Synchronization

/// Which path a packet handed over takes at its owner.
enum HandoffDirection: UInt8 {
  /// A datagram received on a NAT-T port (decapsulate, or punt IKE).
  case inbound = 0
  /// An IP packet read from the TUN (encapsulate).
  case outbound = 1
}

/// One producer thread, one consumer thread. Entries are fixed-size slots; a packet larger than a
/// slot is refused (the producer counts it as dropped).
final class HandoffRing: @unchecked Sendable {
  let capacity: Int
  let slotSize: Int
  private let mask: Int
  private let memory: UnsafeMutableRawPointer
  private let lengths: UnsafeMutablePointer<Int32>
  private let directions: UnsafeMutablePointer<HandoffDirection>
  private let addresses: UnsafeMutablePointer<DatagramAddress>
  /// Entries published by the producer (monotonic count).
  private let head = Atomic<Int>(0)
  /// Entries released by the consumer (monotonic count).
  private let tail = Atomic<Int>(0)
  // Producer's own: the next entry to fill, and the last tail it saw.
  @exclusivity(unchecked) private var filled = 0
  @exclusivity(unchecked) private var seenTail = 0
  // Consumer's own: the next entry to read, and the last head it saw.
  @exclusivity(unchecked) private var read = 0
  @exclusivity(unchecked) private var seenHead = 0

  /// - Parameters:
  ///   - capacity: entries, rounded up to a power of two.
  ///   - slotSize: the largest packet an entry holds.
  init(capacity: Int, slotSize: Int = DataplaneConstants.slotSize) {
    var c = 1
    while c < max(2, capacity) { c <<= 1 }
    self.capacity = c
    self.slotSize = slotSize
    mask = c - 1
    // Pages are touched only when used: an idle ring costs address space, not resident memory.
    memory = .allocate(byteCount: c * slotSize, alignment: 4096)
    lengths = .allocate(capacity: c)
    lengths.initialize(repeating: 0, count: c)
    directions = .allocate(capacity: c)
    directions.initialize(repeating: .inbound, count: c)
    let zero = Endpoint(address: .v4(0), port: 0)
    addresses = .allocate(capacity: c)
    addresses.initialize(repeating: DatagramAddress(remote: zero, local: zero), count: c)
  }

  deinit {
    memory.deallocate()
    lengths.deallocate()
    directions.deallocate()
    addresses.deallocate()
  }

  // MARK: producer

  /// Copies a packet into the next free entry (visible to the consumer after ``publish()``).
  /// - Returns: false when the ring is full or the packet does not fit an entry.
  func push(_ data: UnsafeRawPointer, count: Int, direction: HandoffDirection, address: DatagramAddress) -> Bool {
    guard count <= slotSize else { return false }
    if filled - seenTail == capacity {
      seenTail = tail.load(ordering: .acquiring)
      if filled - seenTail == capacity { return false }
    }
    let i = filled & mask
    (memory + i * slotSize).copyMemory(from: data, byteCount: count)
    lengths[i] = Int32(count)
    directions[i] = direction
    addresses[i] = address
    filled += 1
    return true
  }

  /// Makes every entry pushed so far visible to the consumer.
  /// - Returns: whether there was anything new (the consumer then needs a wake-up).
  func publish() -> Bool {
    guard filled != head.load(ordering: .relaxed) else { return false }
    head.store(filled, ordering: .releasing)
    return true
  }

  // MARK: consumer

  /// The next published entry, or nil; the entry stays valid until ``release()``.
  func next() -> (data: UnsafeMutableRawPointer, count: Int, direction: HandoffDirection, address: DatagramAddress)? {
    if read == seenHead {
      seenHead = head.load(ordering: .acquiring)
      if read == seenHead { return nil }
    }
    let i = read & mask
    read += 1
    return (memory + i * slotSize, Int(lengths[i]), directions[i], addresses[i])
  }

  /// Hands every entry read so far back to the producer.
  func release() {
    tail.store(read, ordering: .releasing)
  }
}
