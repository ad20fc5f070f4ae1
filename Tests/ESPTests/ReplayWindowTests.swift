// SPDX-License-Identifier: Apache-2.0
// The RFC 6479 window against a naive reference (a set of every number seen), over random walks.
import Testing

@testable import ESP

/// The obviously-correct receiver: remembers every sequence number ever accepted.
struct NaiveWindow {
  let size: UInt64
  var highest: UInt64
  var seen: Set<UInt64>
  init(size: Int, highest: UInt64) {
    self.size = UInt64(size)
    self.highest = highest
    seen = [highest]
  }
  func verdict(_ seq: UInt64) -> ReplayVerdict {
    if size == 0 || seq > highest { return .accept(seq) }
    if highest - seq >= size { return .outsideWindow }
    return seen.contains(seq) ? .replayed : .accept(seq)
  }
  mutating func commit(_ seq: UInt64) {
    seen.insert(seq)
    highest = max(highest, seq)
  }
  /// RFC 4303 App. A: the one number with these low bits in [highest - size + 1, highest - size + 2^32].
  func infer(_ low: UInt32) -> UInt64? {
    let w = size == 0 ? UInt64(1) << 31 : size
    let bottom = Int128(highest) - Int128(w) + 1
    var candidate = (bottom >> 32) << 32 | Int128(low)
    if candidate < bottom { candidate += 1 << 32 }
    guard candidate >= 0, candidate <= Int128(UInt64.max) else { return nil }
    return UInt64(candidate)
  }
}

@Suite struct ReplayWindowTests {
  static let sizes = [0, 32, 64, 100, 1024, 4096, 8192]

  /// 32-bit numbers: jumps ahead, steps back inside and beyond the window, duplicates.
  @Test(arguments: sizes)
  func matchesReference32(_ size: Int) {
    var rng = SplitMix(seed: UInt64(size) + 1)
    var window = ReplayWindow(size: size, esn: false, highest: 0)
    var naive = NaiveWindow(size: size, highest: 0)
    var accepted = 0
    for _ in 0..<200_000 {
      let seq = next(&rng, around: naive.highest, size: size, limit: 0xFFFF_FFFF)
      let v = window.check(UInt32(seq))
      #expect(v == naive.verdict(seq), "seq \(seq) highest \(naive.highest)")
      if case .accept(let s) = v, UInt64.random(in: 0..<4, using: &rng) != 0 {  // 1 in 4 fails its ICV
        let committed = window.commit(s)
        #expect(committed)
        naive.commit(s)
        accepted += 1
      }
      #expect(window.highest == naive.highest)
    }
    #expect(accepted > 10_000)
  }

  /// 64-bit ESN: the inferred number must be the RFC's, across many 2^32 boundaries.
  @Test(arguments: sizes)
  func matchesReferenceESN(_ size: Int) {
    var rng = SplitMix(seed: UInt64(size) + 99)
    let start: UInt64 = 0xFFFF_F000
    var window = ReplayWindow(size: size, esn: true, highest: start)
    var naive = NaiveWindow(size: size, highest: start)
    var crossings = 0
    for _ in 0..<200_000 {
      let seq = next(&rng, around: naive.highest, size: size, limit: UInt64.max, bigJumps: true)
      let low = UInt32(truncatingIfNeeded: seq)
      guard let inferred = naive.infer(low) else {
        let refused = window.check(low)
        #expect(refused == .outsideWindow)
        continue
      }
      let v = window.check(low)
      #expect(v == naive.verdict(inferred), "low \(low) highest \(naive.highest)")
      // Only commit when the sender's true number is what the receiver inferred: otherwise the ICV,
      // computed over the true high bits, would fail.
      if case .accept(let s) = v, s == seq {
        let before = naive.highest >> 32
        let committed = window.commit(s)
        #expect(committed)
        naive.commit(s)
        if naive.highest >> 32 != before { crossings += 1 }
      }
      #expect(window.highest == naive.highest)
    }
    #expect(crossings > 5)
  }

  /// Two copies of one packet checked before either is committed (one batch): only one commits.
  @Test func doubleCommitIsRefused() {
    var w = ReplayWindow(size: 64, esn: false)
    guard case .accept(let a) = w.check(7), case .accept(let b) = w.check(7) else {
      Issue.record("check should accept")
      return
    }
    let first = w.commit(a)
    let second = w.commit(b)
    #expect(first)
    #expect(!second)
  }

  @Test func startingEdgeIsAReplay() {
    let w = ReplayWindow(size: 1024, esn: false, highest: 500)
    let verdicts = [w.check(500), w.check(499), w.check(501), w.check(0)]
    #expect(verdicts == [.replayed, .accept(499), .accept(501), .accept(0)])  // 500 - 0 < 1024
  }

  @Test func bitmapIsSizedToTheWindow() {
    let bytes = [1024, 4096, 32].map { ReplayWindow(size: $0, esn: false).bitmapBytes }
    #expect(bytes == [256, 1024, 16])  // 17 blocks rounded up to 32; 65 to 128; 2
  }

  func next(_ rng: inout SplitMix, around highest: UInt64, size: Int, limit: UInt64, bigJumps: Bool = false) -> UInt64 {
    let w = UInt64(max(size, 64))
    let r = UInt64.random(in: 0..<100, using: &rng)
    var seq: UInt64
    switch r {
    case 0..<40: seq = highest &+ UInt64.random(in: 1...4, using: &rng)
    case 40..<60: seq = highest &- min(highest, UInt64.random(in: 0..<w, using: &rng))
    case 60..<70: seq = highest &- min(highest, UInt64.random(in: w..<(3 * w), using: &rng))
    case 70..<80: seq = highest &+ UInt64.random(in: 1...(3 * w), using: &rng)
    case 80..<90: seq = highest
    default:
      seq =
        bigJumps
        ? highest &+ UInt64.random(in: (1 << 28)...(1 << 31), using: &rng)
        : highest &+ UInt64.random(in: 1...100_000, using: &rng)
    }
    return min(seq, limit)
  }
}
