// SPDX-License-Identifier: Apache-2.0
// The io_uring loop with several workers (`--workers N`): before a batch is processed, the packets
// another worker owns are copied into the ring to that worker and leave the batch; after every
// round, the rings from the other workers are read into this worker's batches, and the workers
// this one published packets for are woken with an eventfd write that rides on the next submit.
import CLinux
import CURing
import ESP
import Forwarding

#if canImport(Glibc)
  import Glibc
#endif

extension URingLoop {
  /// Reads this worker's wake eventfd (with several workers).
  func postHandoffRead() {
    guard let mesh = core.mesh, let sqe = uring.sqe() else { return }
    io_uring_prep_read(sqe, mesh.wakeFDs[core.pipeline.worker], handoffValue, 8, 0)
    io_uring_sqe_set_data64(sqe, userData(.handoff, 0))
  }

  /// Copies each packet of `b` that another worker owns into the ring to that worker and gives
  /// its buffer back; compacts the packets this worker owns to the front (with one worker: none).
  /// - Returns: the packets left in the batch.
  func steer(_ b: BatchArrays, count n: Int, direction: HandoffDirection) -> Int {
    guard let mesh = core.mesh else { return n }
    let me = core.pipeline.worker
    var kept = 0
    for i in 0..<n {
      let p = b.packets[i]
      let owner = direction == .inbound ? core.pipeline.inboundOwner(p.bytes) : core.pipeline.outboundOwner(p)
      if owner == me {
        if kept != i {
          b.packets[kept] = p
          b.addresses[kept] = b.addresses[i]
          b.origin[kept] = b.origin[i]
        }
        kept += 1
        continue
      }
      if mesh.ring(from: me, to: owner).push(p.data, count: p.count, direction: direction, address: b.addresses[i]) {
        core.handoffPackets &+= 1
        wakePending[owner] = true
      } else {
        core.handoffDropped &+= 1
      }
      if direction == .inbound { releaseInbound(b.origin[i]) } else { release(b.origin[i]) }
    }
    return kept
  }

  /// Copies what the other workers handed over into this worker's batches (arena slots).
  func drainHandoffs() {
    guard let mesh = core.mesh else { return }
    let me = core.pipeline.worker
    for from in 0..<mesh.count where from != me {
      let ring = mesh.ring(from: from, to: me)
      while let e = ring.next() {
        switch e.direction {
        case .inbound:
          if inboundCount == batch { flushInbound() }
          guard e.count <= inboundArena.size - DataplaneConstants.headroom, let a = inboundArena.take() else {
            core.handoffDropped &+= 1
            continue
          }
          let slot = inboundArena.slot(a)
          (slot + DataplaneConstants.headroom).copyMemory(from: e.data, byteCount: e.count)
          let i = inboundCount
          inbound.packets[i] = PacketBuffer(
            base: slot, capacity: inboundArena.size, start: DataplaneConstants.headroom, count: e.count)
          inbound.addresses[i] = e.address
          inbound.origin[i] = URingLoop.arenaBit | a
          inboundCount += 1
        case .outbound:
          if outboundCount >= outboundCapacity { flushOutbound() }
          let room = arena.size - DataplaneConstants.headroom - DataplaneConstants.tailroom
          guard e.count <= room, let a = arena.take() else {
            core.handoffDropped &+= 1
            continue
          }
          let slot = arena.slot(a)
          (slot + DataplaneConstants.headroom).copyMemory(from: e.data, byteCount: e.count)
          appendOutbound(
            PacketBuffer(base: slot, capacity: arena.size, start: DataplaneConstants.headroom, count: e.count),
            origin: URingLoop.arenaBit | a)
        }
      }
      ring.release()
    }
  }

  /// Publishes what this round pushed to each ring, and queues a wake-up for each worker that got
  /// something: an eventfd write submitted with this worker's next io_uring_enter (no extra syscall).
  func publishHandoffs() {
    guard let mesh = core.mesh else { return }
    let me = core.pipeline.worker
    for to in 0..<mesh.count where wakePending[to] {
      wakePending[to] = false
      guard mesh.ring(from: me, to: to).publish(), let sqe = uring.sqe() else { continue }
      io_uring_prep_write(sqe, mesh.wakeFDs[to], wakeOne, 8, 0)
      io_uring_sqe_set_data64(sqe, userData(.wake, UInt32(to)))
    }
  }
}
