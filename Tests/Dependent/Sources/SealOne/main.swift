// SPDX-License-Identifier: Apache-2.0
// Seals one packet with espd's ESP library, opens it again, and checks UDPEncap classifies the
// sealed bytes as ESP with the SA's SPI. Prints one line; exits 1 when anything differs.
import ESP
import UDPEncap

#if canImport(Glibc)
  import Glibc
#endif

let key = (0..<16).map { UInt8($0 &* 7 &+ 1) }
let payload: [UInt8] = [0x45, 0, 0, 28] + [UInt8](repeating: 0xab, count: 24)
let capacity = 256
let headroom = 64
let memory = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
defer { memory.deallocate() }
payload.withUnsafeBytes { (memory + headroom).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }

func fail(_ why: String) -> Never {
  print("SealOne: \(why)")
  exit(1)
}

do {
  let out = try OutboundSA(spi: 0x1234_5678, algorithm: .aes128gcm16, key: key + [1, 2, 3, 4])
  let inb = try InboundSA(spi: 0x1234_5678, algorithm: .aes128gcm16, key: key + [1, 2, 3, 4])
  var packet = PacketBuffer(base: memory, capacity: capacity, start: headroom, count: payload.count)
  try out.encapsulate(&packet, nextHeader: 4)
  let sealed = packet.count
  let kind = UDPEncap.classify(UnsafeRawBufferPointer(start: memory + packet.start, count: packet.count))
  guard case .esp(let spi) = kind, spi == 0x1234_5678 else { fail("UDPEncap did not see ESP: \(kind)") }
  _ = try inb.decapsulate(&packet)
  let opened = [UInt8](UnsafeRawBufferPointer(start: memory + packet.start, count: packet.count))
  guard opened == payload else { fail("the opened packet differs from the one sealed") }
  print("SealOne: sealed \(payload.count) bytes into \(sealed) (SPI 0x12345678, AES-128-GCM) and opened them again")
} catch {
  fail("\(error)")
}
