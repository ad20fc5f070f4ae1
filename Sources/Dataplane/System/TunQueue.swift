// SPDX-License-Identifier: Apache-2.0
// One queue of the TUN device as a loop's packet device: read(2) and write(2) of whole packets.

#if canImport(Glibc)
  import Glibc
#endif

/// A TUN queue (the device's descriptor, or one a worker attached). Does not own the descriptor:
/// ``TunDevice`` closes its queues.
public final class TunQueue: PacketDevice {
  public let fd: Int32
  public let vnetHeader: Bool

  public init(fd: Int32, vnetHeader: Bool) {
    self.fd = fd
    self.vnetHeader = vnetHeader
  }

  @inline(__always)
  public func readPacket(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int? {
    let r = Sys.read(fd, buffer, capacity)
    return r >= 0 ? r : nil
  }

  @inline(__always)
  public func writePacket(_ bytes: UnsafeRawPointer, count: Int) -> Bool {
    Sys.write(fd, bytes, count) >= 0
  }
}
