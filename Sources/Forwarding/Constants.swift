// SPDX-License-Identifier: Apache-2.0
// Sizes of the Dataplane's buffers and tables, with the reason for each.
import ESP

/// Fixed sizes of the packet path.
public enum DataplaneConstants {
  /// Packets per batch, end to end (wireguard-go passes vectors of 128).
  public static let batchSize = 128
  /// Bytes in front of a packet: outer IPv6 (40) + UDP (8) + ESP header and IV (24), rounded up.
  public static let headroom = 128
  /// Bytes after a packet: ESP padding, trailer and ICV (15 + 2 + 32 = 49, `ESPLayout.tailroom`),
  /// rounded up.
  public static let tailroom = 64
  /// One slot of a live loop's slab: a 1500-byte MTU packet plus head- and tailroom, rounded to 2 KiB.
  public static let slotSize = 2048

  /// The slot for a TUN of this MTU: the inner packet, head- and tailroom, and room for the ESP and
  /// UDP headers of the datagram that carries it (and, in a provided receive buffer, the kernel's
  /// recvmsg header, address and control data); at least ``slotSize``, in whole KiB.
  public static func slotSize(mtu: Int) -> Int {
    max(slotSize, (mtu + headroom + tailroom + 512 + 1023) / 1024 * 1024)
  }
  /// Learned inner flows kept for tunnels that share an alias (4-way buckets, oldest replaced).
  public static let flowTableCapacity = 1 << 16
}
