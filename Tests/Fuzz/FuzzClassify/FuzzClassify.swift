// SPDX-License-Identifier: Apache-2.0
// UDPEncap.classify on any datagram, checked against RFC 3948 §2 written out independently:
// one byte 0xFF is a keepalive; a zero first word with a whole IKE header behind it is IKE; a
// non-zero SPI with room for the smallest ESP packet is ESP with that SPI; all else is malformed.
import FuzzSupport
import UDPEncap

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClassify(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  // An exact-size copy: reading one byte past the datagram is a heap overflow ASan reports.
  let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
  defer { copy.deallocate() }
  if size > 0, let data { copy.copyMemory(from: UnsafeRawBufferPointer(start: data, count: size)) }
  let payload = UnsafeRawBufferPointer(copy)

  let got = UDPEncap.classify(payload)
  let firstWord = size >= 4 ? payload.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) } : nil
  let expected: Classification
  if size == 1 && payload[0] == 0xFF {
    expected = .natKeepalive
  } else if let w = firstWord, w == 0 {
    expected = size >= 4 + 28 ? .ike : .malformed
  } else if let w = firstWord, size >= 8 + 4 + 16 {  // header, trailer, the shortest ICV
    expected = .esp(spi: w)
  } else {
    expected = .malformed
  }
  require(got == expected, "classify(\(size) bytes) = \(got), RFC 3948 says \(expected)")
  return 0
}
