// SPDX-License-Identifier: Apache-2.0
// The whole inbound path (Pipeline.inbound: classify, SPI lookup, replay, open, selectors, NAT
// endpoint update, transport rebuild, flow learning) of a gateway with five kinds of tunnel.
//
// Input: byte 0 says what the datagram is, then a source address and port for it:
// - raw (bit 7 clear): the rest is the UDP payload as received (keepalive, IKE, junk, forged ESP).
// - authentic (bit 7 set): byte 0 picks the tunnel; a 32-bit sequence number, a Next Header, a
//   byte offset and an XOR mask follow, and the rest is the inner packet, sealed with the tunnel's
//   peer SA (the datagram is damaged at that offset when the mask is not zero).
// Invariants: no trap; the packet stays inside its exact-size slot (ASan sees the rest); a datagram
// that was not authentic (raw, or damaged) changes no state at all (windows, peers, endpoints,
// tunnel counters, flows); an authentic one that is dropped after its ICV passed may advance its
// SA's window but moves no peer and counts no packet in; the verdict counters add up.
import Dataplane
import ESP
import FuzzSupport

@testable import Dataplane

nonisolated(unsafe) let pipeline: Pipeline = {
  let table = try! SATable(config: FuzzGateway.config())
  return Pipeline(table: table, flowCapacity: 64)
}()

/// Headroom in front as the loop leaves it, and room behind for the ESP trailer and ICV: the slot
/// holds nothing more, so a write past what the path may use is a heap overflow ASan reports.
let spare = 2 * DataplaneConstants.headroom + 512

/// Inputs run so far: every 8192, the verdict counts are printed, to show how deep the run goes
/// (a run that never decapsulates would test only the drop paths).
nonisolated(unsafe) var inputs = 0

func printVerdicts() {
  let c = pipeline.counters
  let drops = DropReason.allCases.filter { c.drops[$0] > 0 }.map { "\($0.name) \(c.drops[$0])" }
  print(
    "verdicts: decapsulated \(c.decapsulated), ike \(c.ike), keepalive \(c.keepalive); drops: \(drops.joined(separator: ", "))"
  )
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInbound(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  inputs += 1
  if inputs & 8191 == 0 { printVerdicts() }
  var input = FuzzInput(data, size)
  let selector = input.byte()
  let sourceV6 = input.byte() & 1 == 1
  let source: IPAddress =
    sourceV6
    ? .v6(UInt64(0x2001_0db8_0000_0000) | UInt64(input.u16()), UInt64(input.u16()))
    : .v4(0xCB00_7100 | UInt32(input.byte()))
  let remote = Endpoint(address: source, port: input.u16())
  let address = DatagramAddress(remote: remote, local: FuzzGateway.listen)

  let slot = ExactSlot(capacity: input.rest.count + spare)
  var packet: PacketBuffer
  var authentic = false
  if selector & 0x80 == 0 {
    guard let p = slot.packet(input.rest, headroom: DataplaneConstants.headroom) else { return 0 }
    packet = p
  } else {
    let tunnel = Int(selector & 0x7F) % FuzzGateway.shapes.count
    let seq = UInt64(input.u32())
    let nextHeader = input.byte()
    let damageAt = Int(input.u16())
    let damage = input.byte()
    guard var p = slot.packet(input.rest, headroom: DataplaneConstants.headroom) else { return 0 }
    let sa = FuzzGateway.peerSA(tunnel, next: max(seq, 1))
    guard (try? sa.encapsulate(&p, nextHeader: nextHeader)) != nil else { return 0 }
    if damage != 0 && p.count > 0 {
      let at = damageAt % p.count
      p.data.storeBytes(of: p.data.load(fromByteOffset: at, as: UInt8.self) ^ damage, toByteOffset: at, as: UInt8.self)
    }
    authentic = damage == 0
    packet = p
  }

  let before = PipelineState(pipeline)
  let countersBefore = pipeline.counters.total
  let verdict = pipeline.inbound(&packet, address: address)
  slot.requireInside(packet, "inbound")
  let after = PipelineState(pipeline)
  require(
    pipeline.counters.total == countersBefore + 1, "one datagram, \(pipeline.counters.total - countersBefore) verdicts")

  switch verdict {
  case .decapsulated(let index):
    require(authentic, "a datagram that was not sealed by a peer was decapsulated into tunnel \(index)")
    // Port 0 (raw ESP in a capture) says nothing about the peer's UDP endpoint.
    let peer = pipeline.table.tunnels[Int(index)].peer
    require(remote.port == 0 || peer == remote, "an authentic packet did not set its peer")
  case .dropped where !authentic, .ike, .keepalive:
    require(after == before, "\(verdict) for an unauthenticated datagram changed the pipeline's state")
  case .dropped:
    require(after.sameEndpointsAndCounters(as: before), "\(verdict) after the ICV moved a peer or counted a packet")
  case .encapsulated, .passed:
    require(false, "the inbound path returned \(verdict)")
  }
  return 0
}
