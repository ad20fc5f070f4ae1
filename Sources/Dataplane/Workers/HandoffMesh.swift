// SPDX-License-Identifier: Apache-2.0
// What the workers of one dataplane share: a handoff ring for every ordered pair of workers, an
// eventfd per worker to wake it, and the stop flag.
import CLinux
import Forwarding
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The rings and wake-ups between `count` workers. Thread-safe: each ring has one producer and one
/// consumer; the eventfds and the flag are safe to touch from any thread.
final class HandoffMesh: @unchecked Sendable {
  let count: Int
  /// Readable when another worker published packets for this one, or the workers must stop.
  let wakeFDs: [Int32]
  private let wakeEvents: [SharedFD]
  private let rings: [HandoffRing?]
  private let stopFlag = Atomic<Bool>(false)

  /// - Parameters:
  ///   - count: workers (2 or more).
  ///   - entries: ring entries each worker can have waiting for it, split over its producers.
  ///   - slotSize: the largest packet an entry holds.
  init(workers count: Int, entries: Int = 4096, slotSize: Int = DataplaneConstants.slotSize) throws(SystemError) {
    self.count = count
    var events: [SharedFD] = []
    for _ in 0..<count { events.append(SharedFD(try Sys.eventFD())) }  // on a throw, those made close
    wakeEvents = events
    wakeFDs = events.map(\.raw)
    let perRing = max(64, entries / max(1, count - 1))
    var r: [HandoffRing?] = []
    for from in 0..<count {
      for to in 0..<count { r.append(from == to ? nil : HandoffRing(capacity: perRing, slotSize: slotSize)) }
    }
    rings = r
  }

  /// The ring worker `from` fills for worker `to`.
  @inline(__always)
  func ring(from: Int, to: Int) -> HandoffRing { rings[from * count + to]! }

  /// Whether some worker asked every worker to stop.
  var stopped: Bool { stopFlag.load(ordering: .acquiring) }

  /// Asks every worker to stop after its current batch, and wakes them.
  func stopAll() {
    stopFlag.store(true, ordering: .releasing)
    for fd in wakeFDs { Sys.signal(eventFD: fd) }
  }
}
