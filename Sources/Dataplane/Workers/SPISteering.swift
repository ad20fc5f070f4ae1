// SPDX-License-Identifier: Apache-2.0
// Inbound steering by SPI (`--workers N`): an eBPF program on each SO_REUSEPORT group reads a
// datagram's SPI and picks the socket of the worker that owns its tunnel, from a map the control
// thread keeps in step with the SA table. Datagrams then reach their owner without a handoff copy,
// also when many tunnels share one outer 4-tuple (two gateways, many SAs), which the kernel's
// 4-tuple hash would put on one socket. An SPI the map does not hold falls back to that hash,
// and a datagram that lands on the wrong worker is still handed over: steering is only a shortcut.
import CLinux
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

/// The map and the program. The map is changed on the control thread only.
final class SPISteering {
  private let map: OwnedFD
  private let program: OwnedFD
  /// What the map holds (SPI → socket index), to change only what differs.
  private var installed: [UInt32: UInt32] = [:]
  /// Entries the kernel refused (the map is full).
  private(set) var refused = 0
  static let maxEntries: UInt32 = 1 << 20

  /// Creates the map and loads the program.
  /// - Throws: ``SystemError`` when the kernel refuses (no eBPF, no CAP_BPF, ...).
  init() throws(SystemError) {
    map = try Sys.bpfSPIMap(entries: SPISteering.maxEntries, "cannot create the SPI steering map (bpf)")
    program = try Sys.bpfSPIProgram(map: map.raw, "cannot load the SPI steering program (bpf)")
  }

  /// Attaches the program to the SO_REUSEPORT group `socket` belongs to (the group's sockets are
  /// indexed in the order they were bound: worker order).
  func attach(to socket: UDPSocket) throws(SystemError) {
    try Sys.setOption(
      socket.fd, SOL_SOCKET, 52 /* SO_ATTACH_REUSEPORT_EBPF */, program.raw, "cannot attach the SPI steering program")
  }

  /// Takes the program off the group `socket` belongs to (after a fallback to one loop).
  /// Best effort: with one socket left in the group (the fallback's), an index the program picks
  /// beyond it falls back to the kernel's hash, so a program that stays attached steers nothing.
  func detach(from socket: UDPSocket) {
    try? Sys.setOption(socket.fd, SOL_SOCKET, 68 /* SO_DETACH_REUSEPORT_BPF */, 0, "cannot detach SPI steering")
  }

  /// Fills the map from `table`: each inbound SPI to its tunnel's owner among `workers`, SPI 0 (IKE)
  /// to worker 0.
  func sync(to table: LookupTables, workers: Int) {
    set(0, worker: 0)
    for t in table.tunnels {
      let w = Tunnel.owner(t.ownerKey, workers: workers)
      for sa in t.inbound { set(sa.spi, worker: w) }
    }
  }

  /// Steers one SPI to a worker (a change at run time: one map update).
  func set(_ spi: UInt32, worker: Int) {
    let w = UInt32(worker)
    guard installed[spi] != w else { return }
    if Sys.bpfUpdate(map.raw, spi, w) { installed[spi] = w } else { refused += 1 }
  }

  /// Forgets one SPI (its datagrams then go by the kernel's hash and are handed over if need be).
  func remove(_ spi: UInt32) {
    guard installed[spi] != nil else { return }
    Sys.bpfDelete(map.raw, spi)  // not there: deleted already
    installed[spi] = nil
  }

  /// The socket index the map holds for `spi` (tests).
  func lookup(_ spi: UInt32) -> UInt32? {
    Sys.bpfLookup(map.raw, spi)
  }

  /// Entries in the map.
  var count: Int { installed.count }
}
