// SPDX-License-Identifier: Apache-2.0
// Packet memory (receive buffer rings, TUN read slabs, send pools): page-aligned and touched once
// when it is made, so that resident memory under load is there from the start. Left to fault in
// on first use, a 64 KB GRO buffer's later pages are touched only by the first large coalesced
// receive that lands in it, which can be minutes into a run: RSS then creeps up (5 MB on a soak's
// gateway) and each such page fault lands on the packet path.

enum PacketMemory {
  /// `bytes` of zeroed, page-aligned memory, every page resident. Release with `deallocate()`.
  static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
    let n = max(1, bytes)
    let p = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 4096)
    p.initializeMemory(as: UInt8.self, repeating: 0, count: n)
    return p
  }
}
