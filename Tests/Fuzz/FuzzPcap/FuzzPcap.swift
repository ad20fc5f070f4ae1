// SPDX-License-Identifier: Apache-2.0
// `espd replay` on any file: libpcap reads it as pcap or pcapng, each frame goes through the link
// layer (Ethernet, SLL, SLL2, raw IP), the outer IP and UDP headers, and the gateway's pipeline in
// both directions. Invariants: no trap, nothing outside the replay slot (ASan), an error from
// libpcap or the link type is a thrown ReplayError, and the verdicts add up to the packets read.
import Dataplane
import Forwarding
import FuzzSupport

#if canImport(Glibc)
  import Glibc
#endif

/// The input goes to libpcap as a file: an unlinked temporary file, opened again through /proc for
/// each input (mkstemp: memfd_create is GNU-only, and Swift sees glibc without _GNU_SOURCE).
let memfd: Int32 = {
  var template = Array("/tmp/espd-fuzz-pcap.XXXXXX".utf8CString)
  let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
  require(fd >= 0, "mkstemp failed: errno \(errno)")
  template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }  // gone when the fuzzer exits
  return fd
}()
let inputPath = "/proc/self/fd/\(memfd)"
/// One replayer for the run (building five tunnels' SAs per input would dominate the time); each
/// input's verdicts are the change in its counters.
nonisolated(unsafe) let replayer = try! Replayer(config: FuzzGateway.config())

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPcap(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  require(ftruncate(memfd, 0) == 0, "ftruncate: errno \(errno)")
  if size > 0, let data { require(pwrite(memfd, data, size, 0) == size, "pwrite: errno \(errno)") }
  let before = replayer.pipeline.counters.total
  do {
    let summary = try replayer.run(input: inputPath, output: "/dev/null")
    require(
      summary.verdicts.total - before == summary.packets,
      "\(summary.packets) packets read, \(summary.verdicts.total - before) verdicts")
    if let damage = summary.damage { require(!damage.contains("\n"), "a damage message of several lines") }
  } catch {
    // Not a capture, or a link type espd does not read: a one-line error, as `espd replay` prints it.
    require(!"\(error)".isEmpty && !"\(error)".contains("\n"), "the error for a bad file is not one line: \(error)")
  }
  return 0
}
