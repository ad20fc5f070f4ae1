// SPDX-License-Identifier: Apache-2.0
// The two sides of a loop, as protocols (wireguard-go's tun.Device and conn.Bind): the TUN queue
// and the outer sockets. espd runs on the kernel's (TunQueue, UDPSocket); the unit tests run the
// same loop on in-memory ones (Tests/DataplaneTests/Fakes), without root.
import ESP
import Forwarding

/// The inner side: whole IP packets (after a virtio-net header when ``vnetHeader``).
public protocol PacketDevice: AnyObject {
  /// Packets carry a virtio-net header in front (IFF_VNET_HDR).
  var vnetHeader: Bool { get }
  /// Reads one packet into `buffer` without blocking.
  /// - Returns: its length (header included), or nil when none is waiting.
  func readPacket(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int?
  /// Writes one packet (header included). - Returns: false if the device refused it.
  func writePacket(_ bytes: UnsafeRawPointer, count: Int) -> Bool
}

/// Packets and their addresses, in slots the loop owns: what a socket fills and sends.
public struct DatagramBatch {
  public let packets: UnsafeMutablePointer<PacketBuffer>
  public let addresses: UnsafeMutablePointer<DatagramAddress>
  /// Slot `i` starts at `slab + i * slotSize`; a received datagram goes at `headroom`.
  public let slab: UnsafeMutableRawPointer
  public let slotSize: Int
  public let headroom: Int

  public init(
    packets: UnsafeMutablePointer<PacketBuffer>, addresses: UnsafeMutablePointer<DatagramAddress>,
    slab: UnsafeMutableRawPointer, slotSize: Int, headroom: Int
  ) {
    self.packets = packets
    self.addresses = addresses
    self.slab = slab
    self.slotSize = slotSize
    self.headroom = headroom
  }

  @inline(__always) public func slot(_ i: Int) -> UnsafeMutableRawPointer { slab + i * slotSize }
}

/// One outer socket: datagrams in batches, and single datagrams for the control path.
public protocol DatagramSocket: AnyObject {
  /// The address and port it is bound to (the address may be the wildcard).
  var local: Endpoint { get }
  /// Receives up to `max` datagrams without blocking, datagram `i` into slot `i` at the headroom;
  /// sets `packets[i]` and `addresses[i]` (remote: the sender; local: where it was sent to).
  /// - Returns: how many (0: none waiting).
  func receive(into batch: DatagramBatch, max: Int) -> Int
  /// Sends the packets at `indices`, each to its address's remote from its address's local.
  /// - Returns: how many left; the rest were dropped (the kernel's buffer was full).
  func send(_ batch: DatagramBatch, indices: [Int]) -> Int
  /// Sends one datagram (keepalives, IKE replies). - Returns: false if it was dropped (buffer full).
  func send(_ bytes: UnsafeRawBufferPointer, to remote: Endpoint, from source: IPAddress) throws(SystemError) -> Bool
}
