// SPDX-License-Identifier: Apache-2.0
// Buffers the io_uring loop's outbound side hands out and takes back: 2 KiB slots for segments cut
// from GSO packets, and sendmsg descriptors that carry up to 64 ESP datagrams each (UDP GSO).
import CLinux
import CURing
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// Fixed-size packet slots, handed out and taken back in O(1). Owned by one loop.
final class SlotArena {
  let count: Int
  let size: Int
  let memory: UnsafeMutableRawPointer
  private let free: UnsafeMutablePointer<UInt32>
  private(set) var available: Int

  init(count: Int, size: Int) {
    self.count = count
    self.size = size
    memory = PacketMemory.allocate(count * size)
    free = .allocate(capacity: max(1, count))
    for i in 0..<count { free[i] = UInt32(count - 1 - i) }
    available = count
  }

  deinit {
    memory.deallocate()
    free.deallocate()
  }

  func slot(_ i: UInt32) -> UnsafeMutableRawPointer { memory + Int(i) * size }

  func take() -> UInt32? {
    guard available > 0 else { return nil }
    available -= 1
    return free[available]
  }

  func give(_ i: UInt32) {
    free[available] = i
    available += 1
  }
}

/// sendmsg descriptors: each a msghdr with its destination, control (PKTINFO source, UDP_SEGMENT
/// size), up to ``maxSegments`` iovecs, and the buffers to release when the send completes.
final class SendPool {
  /// UDP_MAX_SEGMENTS of older kernels (newer ones take 128).
  static let maxSegments = 64
  let capacity: Int
  let headers: UnsafeMutablePointer<msghdr>
  let iovecs: UnsafeMutablePointer<iovec>
  let names: UnsafeMutablePointer<SocketAddressStorage>
  let controls: UnsafeMutableRawPointer
  /// The buffers (loop-specific origin codes) each descriptor carries.
  let origins: UnsafeMutablePointer<UInt32>
  let counts: UnsafeMutablePointer<Int>
  /// Where each descriptor goes (kept to send its datagrams again one by one if GSO is refused).
  @exclusivity(unchecked) var destinations: [(socket: Int, remote: Endpoint, source: IPAddress?)]
  private let free: UnsafeMutablePointer<Int32>
  @exclusivity(unchecked) private(set) var available: Int

  init(capacity: Int) {
    self.capacity = capacity
    headers = .allocate(capacity: capacity)
    headers.initialize(repeating: msghdr(), count: capacity)
    iovecs = .allocate(capacity: capacity * SendPool.maxSegments)
    iovecs.initialize(repeating: iovec(), count: capacity * SendPool.maxSegments)
    names = .allocate(capacity: capacity)
    names.initialize(repeating: SocketAddressStorage(), count: capacity)
    controls = .allocate(byteCount: capacity * SocketAddress.controlSpace, alignment: 16)
    origins = .allocate(capacity: capacity * SendPool.maxSegments)
    origins.initialize(repeating: 0, count: capacity * SendPool.maxSegments)
    counts = .allocate(capacity: capacity)
    counts.initialize(repeating: 0, count: capacity)
    destinations = Array(repeating: (0, Endpoint(address: .v4(0), port: 0), nil), count: capacity)
    free = .allocate(capacity: capacity)
    for i in 0..<capacity { free[i] = Int32(capacity - 1 - i) }
    available = capacity
  }

  deinit {
    headers.deallocate()
    iovecs.deallocate()
    names.deallocate()
    controls.deallocate()
    origins.deallocate()
    counts.deallocate()
    free.deallocate()
  }

  func take() -> Int? {
    guard available > 0 else { return nil }
    available -= 1
    let d = Int(free[available])
    counts[d] = 0
    return d
  }

  func give(_ d: Int) {
    free[available] = Int32(d)
    available += 1
  }

  /// Adds a datagram to descriptor `d`.
  func append(_ d: Int, data: UnsafeMutableRawPointer, length: Int, origin: UInt32) {
    let k = counts[d]
    iovecs[d * SendPool.maxSegments + k] = iovec(iov_base: data, iov_len: length)
    origins[d * SendPool.maxSegments + k] = origin
    counts[d] = k + 1
  }

  /// Fills descriptor `d`'s msghdr: to `remote`, from `source` (PKTINFO, for a wildcard socket),
  /// and with UDP_SEGMENT when it carries more than one datagram (each `segmentSize` bytes but the last).
  func prepare(_ d: Int, remote: Endpoint, source: IPAddress?, segmentSize: Int) -> UnsafeMutablePointer<msghdr> {
    let name = UnsafeMutableRawPointer(names + d)
    let nameLength = SocketAddress.write(remote, to: name)
    let control = controls + d * SocketAddress.controlSpace
    var controlLength = source.map { SocketAddress.writePacketInfo(source: $0, to: control) } ?? 0
    if counts[d] > 1 {
      controlLength += SocketAddress.writeSegmentSize(UInt16(segmentSize), to: control + controlLength)
    }
    headers[d] = msghdr(
      msg_name: name, msg_namelen: nameLength, msg_iov: iovecs + d * SendPool.maxSegments, msg_iovlen: counts[d],
      msg_control: controlLength > 0 ? control : nil, msg_controllen: controlLength, msg_flags: 0)
    return headers + d
  }
}
