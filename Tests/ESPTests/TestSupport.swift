// SPDX-License-Identifier: Apache-2.0
// Helpers for ESP tests: owned packet slots, vector loading, deterministic random bytes.
import Foundation

@testable import ESP

/// A heap slot that owns its memory, with a PacketBuffer view into it.
final class Slot {
  static let size = 4096
  static let headroom = 256
  let base = UnsafeMutableRawPointer.allocate(byteCount: Slot.size, alignment: 16)
  init() { base.initializeMemory(as: UInt8.self, repeating: 0xEE, count: Slot.size) }
  deinit { base.deallocate() }

  /// Copies `bytes` in at the standard headroom.
  func packet(_ bytes: [UInt8], at start: Int = Slot.headroom) -> PacketBuffer {
    var p = PacketBuffer(base: base, capacity: Slot.size, start: start, count: 0)
    let ok = bytes.withUnsafeBytes { p.assign($0, at: start) }
    precondition(ok)
    return p
  }
}

/// A small deterministic generator (SplitMix64) so failures reproduce.
struct SplitMix: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &self) } }
}

/// An ESP-packet vector (Vectors/*.json, schema in scripts/vectors/verify_vectors.py).
struct PacketVector: Decodable, CustomStringConvertible {
  let name: String
  let alg: String
  let key: String
  let auth_key: String?
  let spi: String
  let seq: UInt64
  let esn: Bool
  let iv: String
  let payload: String
  let padding: String
  let next_header: UInt8
  let packet: String
  var description: String { name }

  var algorithm: ESPAlgorithm { ESPAlgorithm(rawValue: alg)! }
  var spiValue: UInt32 { UInt32(spi, radix: 16)! }
}

struct VectorFile<V: Decodable>: Decodable {
  let source: String
  let vectors: [V]
}

enum Vectors {
  static func load<V: Decodable>(_ file: String, as: V.Type = PacketVector.self) -> [V] {
    guard
      let url = Bundle.module.url(forResource: "Vectors/" + file, withExtension: nil)
        ?? Bundle.module.url(forResource: file, withExtension: nil, subdirectory: "Vectors"),
      let data = try? Data(contentsOf: url)
    else { fatalError("missing vector file \(file)") }
    do { return try JSONDecoder().decode(VectorFile<V>.self, from: data).vectors } catch {
      fatalError("cannot decode \(file): \(error)")
    }
  }
}

func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

func key(for alg: ESPAlgorithm, seed: UInt8 = 1) -> [UInt8] {
  (0..<alg.keyLength).map { UInt8(truncatingIfNeeded: Int($0) * 13 + Int(seed)) }
}

func authKey(for alg: ESPAlgorithm, seed: UInt8 = 2) -> [UInt8] {
  (0..<alg.authKeyLength).map { UInt8(truncatingIfNeeded: Int($0) * 7 + Int(seed)) }
}

/// A matching outbound/inbound SA pair.
func saPair(
  _ alg: ESPAlgorithm, spi: UInt32 = 0xC1A0_B001, esn: Bool = false, window: Int = 1024, start: UInt64 = 0
) throws -> (OutboundSA, InboundSA) {
  let out = try OutboundSA(
    spi: spi, algorithm: alg, key: key(for: alg), authKey: authKey(for: alg), esn: esn, sequenceNumber: start)
  let inb = try InboundSA(
    spi: spi, algorithm: alg, key: key(for: alg), authKey: authKey(for: alg), esn: esn, replayWindow: window,
    replaySequence: start)
  return (out, inb)
}

/// Catches the typed error of a throwing ESP call.
func espError(_ body: () throws -> Void) -> ESPError? {
  do {
    try body()
    return nil
  } catch let error as ESPError {
    return error
  } catch {
    return nil
  }
}
