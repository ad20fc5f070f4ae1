// SPDX-License-Identifier: Apache-2.0
// `espd replay`: runs every packet of a capture through the same inbound and outbound paths as the
// live dataplane, with no TUN and no sockets, and writes what they produce to a raw-IP pcap.
import ESP
import Forwarding
import UDPEncap

/// What a replay saw: packets read and the count of every verdict (they add up to `packets`).
public struct ReplaySummary: Sendable {
  public var packets: UInt64 = 0
  public var verdicts = VerdictCounters()
  /// Where the input is damaged (libpcap's words, with the packet number), if it is.
  public var damage: String?

  /// One JSON object: `{"packets":N,"decapsulated":N,…,"drops":{"auth_failed":N,…}}`.
  public var json: String {
    var m: [(key: String, value: JSONValue)] = [
      ("packets", .integer(packets)), ("decapsulated", .integer(verdicts.decapsulated)),
      ("encapsulated", .integer(verdicts.encapsulated)), ("ike", .integer(verdicts.ike)),
      ("keepalive", .integer(verdicts.keepalive)), ("passed", .integer(verdicts.passed)),
      ("dropped", .integer(verdicts.drops.total)), ("drops", StatsSnapshot.dropsValue(verdicts.drops)),
    ]
    if let damage { m.append(("damaged", .string(damage))) }
    return JSONValue.object(m).jsonText
  }

  /// Lines for people: each count, then every drop reason that occurred.
  public var text: String {
    var lines = [
      "packets       \(packets)", "decapsulated  \(verdicts.decapsulated)", "encapsulated  \(verdicts.encapsulated)",
      "ike           \(verdicts.ike)", "keepalive     \(verdicts.keepalive)", "passed        \(verdicts.passed)",
      "dropped       \(verdicts.drops.total)",
    ]
    for r in DropReason.allCases where verdicts.drops[r] > 0 {
      lines.append("  \(r.name)\(String(repeating: " ", count: max(1, 20 - r.name.count)))\(verdicts.drops[r])")
    }
    return lines.joined(separator: "\n")
  }
}

/// Drives a ``Pipeline`` from a capture file. Not thread-safe.
public final class Replayer {
  public let pipeline: Pipeline
  let listen: [Endpoint]
  /// One slot big enough for any captured frame (libpcap's largest snapshot length) plus room.
  static let slotSize = 262_144 + DataplaneConstants.headroom + DataplaneConstants.tailroom
  let slot = UnsafeMutableRawPointer.allocate(byteCount: Replayer.slotSize, alignment: 64)

  /// Builds the SAs of `config` (fresh state: sequence numbers from `seq`, windows from `replay_seq`).
  public init(config: Config) throws(LookupTablesError) {
    pipeline = Pipeline(table: try LookupTables(config: config))
    listen = config.listen
  }

  deinit { slot.deallocate() }

  /// Replays `input` into `output`.
  /// - Returns: the summary; a damaged input stops the replay early and sets `damage`.
  /// - Throws: ``ReplayError`` if a file cannot be opened or the link type is not supported.
  public func run(input: String, output: String) throws(ReplayError) -> ReplaySummary {
    let reader = try PcapReader(path: input)
    guard let linkType = reader.linkType else { throw .linkType(reader.rawLinkType) }
    let writer = try PcapWriter(path: output)
    var summary = ReplaySummary()
    while true {
      let frame: PcapReader.Packet
      do throws(ReplayError) {
        guard let f = try reader.next() else { break }
        frame = f
      } catch {
        summary.damage = "damaged after packet \(summary.packets): \(error)"
        break
      }
      summary.packets += 1
      var packet = PacketBuffer(base: slot, capacity: Replayer.slotSize, start: DataplaneConstants.headroom, count: 0)
      let verdict = process(frame.bytes, linkType: linkType, into: &packet)
      switch verdict {
      case .decapsulated, .encapsulated:
        writer.write(packet.bytes, seconds: frame.seconds, microseconds: frame.microseconds)
      default:
        break
      }
    }
    writer.flush()
    summary.verdicts = pipeline.counters
    return summary
  }

  /// One captured frame through the pipeline; `packet` holds what is to be written.
  func process(_ frame: UnsafeRawBufferPointer, linkType: LinkType, into packet: inout PacketBuffer) -> Verdict {
    let ip: UnsafeRawBufferPointer
    switch LinkLayer.payload(frame, type: linkType) {
    case .ip(let offset, let length): ip = UnsafeRawBufferPointer(rebasing: frame[offset..<(offset + length)])
    case .other: return count(.passed)
    case .truncated: return count(.dropped(.malformed))
    }
    guard packet.assign(ip, at: DataplaneConstants.headroom) else { return count(.dropped(.tooBig)) }
    guard let outer = IPHeader.parse(packet.bytes) else { return count(.dropped(.malformed)) }
    packet.count = outer.totalLength  // drop link-layer padding
    let fragment = outer.version == 4 && packet.uint16(at: 6) & 0x3FFF != 0

    if outer.proto == IPProtocol.udp && !fragment, outer.totalLength >= outer.headerLength + 8 {
      let udp = outer.headerLength
      let remote = Endpoint(address: outer.source, port: packet.uint16(at: udp))
      let local = Endpoint(address: outer.destination, port: packet.uint16(at: udp + 2))
      if isListening(local) {
        let udpLength = Int(packet.uint16(at: udp + 4))
        guard udpLength >= 8, udp + udpLength <= packet.count else { return count(.dropped(.malformed)) }
        _ = packet.trimFront(udp + 8)
        packet.count = udpLength - 8
        return pipeline.inbound(&packet, address: DatagramAddress(remote: remote, local: local))
      }
    }
    if outer.proto == 50 && !fragment {  // ESP directly in IP (RFC 4303 §2), no UDP
      _ = packet.trimFront(outer.headerLength)
      guard packet.count >= UDPEncapConstants.minimumESPSize else { return count(.dropped(.malformed)) }
      let address = DatagramAddress(
        remote: Endpoint(address: outer.source, port: 0), local: Endpoint(address: outer.destination, port: 0))
      return pipeline.inboundESP(&packet, spi: packet.uint32(at: 0), address: address)
    }
    guard pipeline.isRouted(packet) else { return count(.passed) }
    var address = DatagramAddress(remote: Endpoint(address: .v4(0), port: 0), local: Endpoint(address: .v4(0), port: 0))
    let verdict = pipeline.outbound(&packet, address: &address)
    if case .encapsulated = verdict {
      guard OuterHeader.prepend(&packet, source: address.local, destination: address.remote) else {
        // The peer's family differs from every local address: nothing sensible to write.
        pipeline.counters.encapsulated &-= 1
        return count(.dropped(.noRoute))
      }
    }
    return verdict
  }

  /// Counts a verdict the pipeline did not see.
  func count(_ v: Verdict) -> Verdict {
    pipeline.counters.count(v)
    return v
  }

  /// Whether a datagram to `local` is for one of the listen entries (any address for a wildcard).
  func isListening(_ local: Endpoint) -> Bool {
    for l in listen where l.port == local.port && l.address.isV6 == local.address.isV6 {
      if l.address == local.address || l.address == .v4(0) || l.address == .v6(0, 0) { return true }
    }
    return false
  }

}
