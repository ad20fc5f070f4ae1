// SPDX-License-Identifier: Apache-2.0
// An in-memory TUN for the loop tests (wireguard-go's tuntest): packets the test puts in are read
// by the loop; packets the loop writes are kept for the test.
@testable import Dataplane

final class MemoryDevice: PacketDevice {
  let vnetHeader = false
  /// Waiting to be read by the loop, oldest first.
  var toLoop: [[UInt8]] = []
  /// Written by the loop, oldest first.
  var written: [[UInt8]] = []

  func readPacket(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int? {
    guard !toLoop.isEmpty else { return nil }
    let p = toLoop.removeFirst()
    let n = min(p.count, capacity)
    p.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: n) }
    return n
  }

  func writePacket(_ bytes: UnsafeRawPointer, count: Int) -> Bool {
    written.append(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
    return true
  }

  /// Takes what the loop wrote.
  func take() -> [[UInt8]] {
    defer { written.removeAll() }
    return written
  }
}
