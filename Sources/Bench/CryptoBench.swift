// SPDX-License-Identifier: Apache-2.0
// `bench seal` and `bench open`: ESP encapsulation/decapsulation against raw EVP, same sizes, same run.
import ESP

enum Direction: String {
  case seal, open
}

/// A slab of `count` slots of `slotSize` bytes, page-aligned, as a loop would own.
final class Slab {
  static let slotSize = 2048
  static let headroom = 128
  let base: UnsafeMutableRawPointer
  let count: Int

  init(count: Int) {
    self.count = count
    base = .allocate(byteCount: count * Slab.slotSize, alignment: 4096)
    base.initializeMemory(as: UInt8.self, repeating: 0x5A, count: count * Slab.slotSize)
  }
  deinit { base.deallocate() }

  func slot(_ i: Int) -> UnsafeMutableRawPointer { base + i * Slab.slotSize }
  func packet(_ i: Int, count n: Int) -> PacketBuffer {
    PacketBuffer(base: slot(i), capacity: Slab.slotSize, start: Slab.headroom, count: n)
  }
}

enum CryptoBench {
  static let batch = 128

  static func run(direction: Direction, options: CryptoOptions) throws {
    let algorithms = try options.algorithms()
    let sizes = try options.sizes()
    if !options.json { BenchEnvironment.printHeader() }
    for alg in algorithms {
      for size in sizes {
        // Raw and espd batches alternate in one time window, so machine noise hits both alike; the
        // ratio compares the medians of per-batch ns/packet.
        let (esp, raw) = measurePair(
          seconds: options.seconds, packetsPerBatch: batch,
          direction == .seal ? espSeal(alg, size) : espOpen(alg, size),
          direction == .seal ? rawSeal(alg, size) : rawOpen(alg, size))
        let ratio = esp.percentile(0.5) == 0 ? 0 : raw.percentile(0.5) / esp.percentile(0.5)
        printJSONLine([
          ("case", .string(direction.rawValue)), ("alg", .string(alg.rawValue)), ("size", .int(size)),
          ("pps", .double(esp.pps, digits: 0)), ("gbps", .double(esp.pps * Double(size) * 8 / 1e9, digits: 3)),
          ("ns_per_pkt", .double(esp.nsPerPacket, digits: 1)),
          ("p50", .double(esp.percentile(0.5), digits: 1)), ("p90", .double(esp.percentile(0.9), digits: 1)),
          ("raw_pps", .double(raw.pps, digits: 0)), ("raw_ns_per_pkt", .double(raw.nsPerPacket, digits: 1)),
          ("raw_p50", .double(raw.percentile(0.5), digits: 1)),
          ("ratio_to_raw", .double(ratio, digits: 3)),
          ("allocs_per_pkt", .double(esp.allocationsPerPacket, digits: 4)),
        ])
      }
    }
  }

  static func key(_ alg: ESPAlgorithm) -> [UInt8] {
    (0..<alg.keyLength).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
  }
  static func authKey(_ alg: ESPAlgorithm) -> [UInt8] {
    (0..<alg.authKeyLength).map { UInt8(truncatingIfNeeded: $0 &* 3) }
  }

  /// ESP encapsulation of `size`-byte payloads, batches of 128 slots, in place.
  static func espSeal(_ alg: ESPAlgorithm, _ size: Int) -> () -> UInt64 {
    let slab = Slab(count: batch)
    let sa = orExit { try OutboundSA(spi: 0x1000, algorithm: alg, key: key(alg), authKey: authKey(alg), esn: true) }
    return {
      let t0 = nanoseconds()
      for i in 0..<batch {
        var p = slab.packet(i, count: size)
        do { try sa.encapsulate(&p, nextHeader: 4) } catch { benchFailure("seal failed: \(error)") }
      }
      return nanoseconds() - t0
    }
  }

  /// ESP decapsulation: 128 pristine sealed packets are copied back into their slots and opened;
  /// each batch gets a fresh inbound SA (created outside the timed part) since the numbers repeat.
  static func espOpen(_ alg: ESPAlgorithm, _ size: Int) -> () -> UInt64 {
    let slab = Slab(count: batch)
    let pristine = Slab(count: batch)
    let out = orExit { try OutboundSA(spi: 0x1000, algorithm: alg, key: key(alg), authKey: authKey(alg)) }
    var lengths = [Int](repeating: 0, count: batch)
    for i in 0..<batch {
      var p = pristine.packet(i, count: size)
      _ = orExit { try out.encapsulate(&p, nextHeader: 4) }
      lengths[i] = p.count
      precondition(p.start == Slab.headroom - alg.ivLength - 8)
    }
    let start = Slab.headroom - alg.ivLength - 8
    return {
      let paused = CAllocCounterPause()
      let sa = orExit { try InboundSA(spi: 0x1000, algorithm: alg, key: key(alg), authKey: authKey(alg)) }
      paused.resume()
      let t0 = nanoseconds()
      for i in 0..<batch {
        (slab.slot(i) + start).copyMemory(from: pristine.slot(i) + start, byteCount: lengths[i])
        var p = PacketBuffer(base: slab.slot(i), capacity: Slab.slotSize, start: start, count: lengths[i])
        do { _ = try sa.decapsulate(&p) } catch { benchFailure("open failed: \(error)") }
      }
      let ns = nanoseconds() - t0
      withExtendedLifetime(sa) {}
      return ns
    }
  }

  static func rawSeal(_ alg: ESPAlgorithm, _ size: Int) -> () -> UInt64 {
    let slab = Slab(count: batch)
    let raw = RawEVP(algorithm: alg, encrypt: true)
    var counter: UInt64 = 0
    return {
      let t0 = nanoseconds()
      for i in 0..<batch {
        counter &+= 1
        guard raw.process(slab.slot(i) + Slab.headroom, length: size, counter: counter) else {
          benchFailure("raw seal")
        }
      }
      return nanoseconds() - t0
    }
  }

  /// Raw open: the same copy-back of pristine sealed bytes, then decrypt and verify the tag.
  static func rawOpen(_ alg: ESPAlgorithm, _ size: Int) -> () -> UInt64 {
    let slab = Slab(count: batch)
    let pristine = Slab(count: batch)
    let sealer = RawEVP(algorithm: alg, encrypt: true)
    let raw = RawEVP(algorithm: alg, encrypt: false)
    let length = size + alg.icvLength
    for i in 0..<batch {
      guard sealer.process(pristine.slot(i) + Slab.headroom, length: size, counter: UInt64(i)) else {
        benchFailure("raw seal of the pristine packets")
      }
    }
    return {
      let t0 = nanoseconds()
      for i in 0..<batch {
        (slab.slot(i) + Slab.headroom).copyMemory(from: pristine.slot(i) + Slab.headroom, byteCount: length)
        guard raw.process(slab.slot(i) + Slab.headroom, length: size, counter: UInt64(i)) else {
          benchFailure("raw open")
        }
      }
      return nanoseconds() - t0
    }
  }
}
