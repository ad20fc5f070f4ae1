import CLinux
import Forwarding

// SPDX-License-Identifier: Apache-2.0
// The syscall layer, the process and the kernel's other services: thread names and priority,
// the heap, and the eBPF map and program of SPI steering.
#if canImport(Glibc)
  import Glibc
#endif

extension Sys {
  // MARK: threads and memory

  /// Names a thread (at most 15 bytes are kept), for top and perf. Cosmetic: the result says
  /// whether the kernel took it.
  @discardableResult
  static func setName(of thread: pthread_t, _ name: String) -> Bool {
    CLinux_pthread_setname(thread, String(name.prefix(15))) == 0
  }

  /// Gives the calling thread (only) the nice value `nice`. Raising it needs no privilege; the
  /// result says whether the kernel took it.
  @discardableResult
  static func setNice(ofThisThread nice: Int32) -> Bool {
    setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(CLinux_gettid()), nice) == 0
  }

  /// Hands the heap's free pages back to the kernel (malloc_trim). The result says whether any
  /// were: none to give is no error.
  @discardableResult
  static func trimHeap() -> Bool { CLinux_malloc_trim(0) == 1 }

  // MARK: eBPF (SPI steering)

  /// A BPF array map of `entries` u32 → u32.
  static func bpfSPIMap(entries: UInt32, _ what: @autoclosure () -> String) throws(SystemError) -> OwnedFD {
    OwnedFD(adopting: try call(what()) { CLinux_bpf_spi_map_create(entries) })
  }

  /// Loads the SO_REUSEPORT program that steers by SPI through `map`.
  /// - Throws: ``SystemError`` for `what`, followed by the verifier's last line when it gave one.
  static func bpfSPIProgram(map: Int32, _ what: @autoclosure () -> String) throws(SystemError) -> OwnedFD {
    var log = [CChar](repeating: 0, count: 4096)
    let fd = log.withUnsafeMutableBufferPointer { CLinux_bpf_reuseport_spi_prog(map, $0.baseAddress, UInt32($0.count)) }
    guard fd >= 0 else {
      let e = errno
      let text = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      let verifier = text.split(separator: "\n").last.map { ": \($0)" } ?? ""
      throw SystemError(what() + verifier, errno: e)
    }
    return OwnedFD(adopting: fd)
  }

  /// Sets `key` to `value` in a u32 map; false if the kernel refused (the map is full).
  static func bpfUpdate(_ map: Int32, _ key: UInt32, _ value: UInt32) -> Bool {
    CLinux_bpf_map_update_u32(map, key, value) == 0
  }

  /// Deletes `key` from a u32 map. A key the map does not hold (ENOENT) is deleted already: the
  /// result says whether one was there.
  @discardableResult
  static func bpfDelete(_ map: Int32, _ key: UInt32) -> Bool { CLinux_bpf_map_delete_u32(map, key) == 0 }

  /// The value of `key` in a u32 map, or nil.
  static func bpfLookup(_ map: Int32, _ key: UInt32) -> UInt32? {
    var v: UInt32 = 0
    return CLinux_bpf_map_lookup_u32(map, key, &v) == 0 ? v : nil
  }
}
