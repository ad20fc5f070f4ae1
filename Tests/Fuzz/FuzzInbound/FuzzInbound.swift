// SPDX-License-Identifier: Apache-2.0
// The whole inbound path (Pipeline.inbound: classify, SPI lookup, replay, open, selectors, NAT
// endpoint update, transport rebuild, flow learning) of a gateway with five kinds of tunnel.
//
// Each input gets a fresh gateway (so a run depends on its input alone) and is up to 16 datagrams:
// byte 0 says what the datagram is, then a source address and port for it:
// - raw (bit 7 clear): a 16-bit length and the UDP payload as received (keepalive, IKE, junk,
//   forged ESP).
// - authentic (bit 7 set): byte 0 picks the tunnel; a 32-bit sequence number, a Next Header, a
//   byte offset and an XOR mask, a 16-bit length and the inner packet, sealed with the tunnel's
//   peer SA (the datagram is damaged at that offset when the mask is not zero).
// Invariants: no trap; the datagram sits in an allocation of exactly headroom + its length and
// never grows past its end (ASan sees any stray byte); a datagram that was not authentic (raw, or
// damaged) changes no state at all (windows, peers, endpoints, tunnel counters, flows); an
// authentic one that is dropped after its ICV passed may advance its SA's window but moves no
// peer and counts no packet in; an authentic one delivered moves the peer only if it was its SA's
// newest; the verdict counters add up.
import Dataplane
import ESP
import Forwarding
import FuzzSupport

@testable import Dataplane
@testable import Forwarding

let config = FuzzGateway.config()

/// Inputs run so far: every 8192, the verdict counts of those are printed, to show how deep the
/// run goes (a run that never decapsulates would test only the drop paths).
nonisolated(unsafe) var inputs = 0
nonisolated(unsafe) var verdicts = VerdictCounters()

func printVerdicts() {
  let c = verdicts
  let drops = DropReason.allCases.filter { c.drops[$0] > 0 }.map { "\($0.name) \(c.drops[$0])" }
  print(
    "verdicts: decapsulated \(c.decapsulated), ike \(c.ike), keepalive \(c.keepalive); drops: \(drops.joined(separator: ", "))"
  )
}

/// Where authentic datagrams are sealed before they are copied into their exact-size slot.
nonisolated(unsafe) let scratch = ExactSlot(capacity: 65_536 + 2 * DataplaneConstants.headroom)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInbound(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  inputs += 1
  if inputs & 8191 == 0 { printVerdicts() }
  var input = FuzzInput(data, size)
  let pipeline = Pipeline(table: try! LookupTables(config: config), flowCapacity: 64)
  for _ in 0..<16 where !input.isEmpty {
    datagram(&input, pipeline)
  }
  verdicts.add(pipeline.counters)
  return 0
}

func datagram(_ input: inout FuzzInput, _ pipeline: Pipeline) {
  let selector = input.byte()
  let sourceV6 = input.byte() & 1 == 1
  let source: IPAddress =
    sourceV6
    ? .v6(UInt64(0x2001_0db8_0000_0000) | UInt64(input.u16()), UInt64(input.u16()))
    : .v4(0xCB00_7100 | UInt32(input.byte()))
  let remote = Endpoint(address: source, port: input.u16())
  let address = DatagramAddress(remote: remote, local: FuzzGateway.listen)
  let headroom = DataplaneConstants.headroom

  let bytes: UnsafeRawBufferPointer
  var authentic = false
  if selector & 0x80 == 0 {
    bytes = input.take(Int(input.u16()))
  } else {
    let tunnel = Int(selector & 0x7F) % FuzzGateway.shapes.count
    let seq = UInt64(input.u32())
    let nextHeader = input.byte()
    let damageAt = Int(input.u16())
    let damage = input.byte()
    guard var p = scratch.packet(input.take(Int(input.u16())), headroom: headroom) else { return }
    let sa = FuzzGateway.peerSA(tunnel, next: max(seq, 1))
    guard (try? sa.encapsulate(&p, nextHeader: nextHeader)) != nil else { return }
    if damage != 0 && p.count > 0 {
      let at = damageAt % p.count
      p.data.storeBytes(of: p.data.load(fromByteOffset: at, as: UInt8.self) ^ damage, toByteOffset: at, as: UInt8.self)
    }
    authentic = damage == 0
    bytes = p.bytes
  }
  let slot = ExactSlot(capacity: headroom + bytes.count)
  guard var packet = slot.packet(bytes, headroom: headroom) else { return }

  let before = PipelineState(pipeline)
  let countersBefore = pipeline.counters.total
  let verdict = pipeline.inbound(&packet, address: address)
  slot.requireInside(packet, "inbound")
  require(packet.start + packet.count <= slot.capacity, "the packet grew past the datagram's end")
  let after = PipelineState(pipeline)
  require(
    pipeline.counters.total == countersBefore + 1, "one datagram, \(pipeline.counters.total - countersBefore) verdicts")

  switch verdict {
  case .decapsulated(let index):
    require(authentic, "a datagram that was not sealed by a peer was decapsulated into tunnel \(index)")
    // Port 0 (raw ESP in a capture) says nothing about the peer's UDP endpoint. Only the SA's
    // newest packet (one that raised its highest sequence number) moves the peer; a late one
    // leaves it where it was.
    let i = Int(index)
    let peer = pipeline.table.tunnels[i].peer
    let newest = after.highest(i) != before.highest(i) || before.peer(i) == nil
    if newest {
      require(remote.port == 0 || peer == remote, "the newest authentic packet did not set its peer")
    } else {
      require(peer == before.peer(i), "a late authentic packet moved its peer")
    }
  case .dropped where !authentic, .ike, .keepalive:
    require(after == before, "\(verdict) for an unauthenticated datagram changed the pipeline's state")
  case .dropped:
    require(after.sameEndpointsAndCounters(as: before), "\(verdict) after the ICV moved a peer or counted a packet")
  case .encapsulated, .passed:
    require(false, "the inbound path returned \(verdict)")
  }
}
