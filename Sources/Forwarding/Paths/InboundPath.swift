// SPDX-License-Identifier: Apache-2.0
// The inbound path: classify, SPI lookup, replay check, open, replay commit, selector check,
// NAT endpoint update, transport-mode rebuild and flow learning (DESIGN.md, "Inbound").
import ESP
import UDPEncap

extension Pipeline {
  /// Processes a batch of datagrams received on a NAT-T port, in place.
  /// - Parameters:
  ///   - packets: the UDP payloads; each decapsulated one becomes the IP packet for the TUN, each IKE
  ///     one the IKE message without its marker.
  ///   - addresses: each datagram's remote (source) and local (destination) endpoints.
  ///   - verdicts: receives one verdict per packet.
  ///   - count: packets in the batch.
  public func inbound(
    _ packets: UnsafeMutablePointer<PacketBuffer>, addresses: UnsafePointer<DatagramAddress>,
    verdicts: UnsafeMutablePointer<Verdict>, count: Int
  ) {
    for i in 0..<count {
      verdicts[i] = inbound(&packets[i], address: addresses[i])
    }
  }

  /// One datagram on a NAT-T port: keepalive, IKE, ESP or malformed (RFC 3948 §2).
  public func inbound(_ packet: inout PacketBuffer, address: DatagramAddress) -> Verdict {
    switch UDPEncap.classify(packet.bytes) {
    case .natKeepalive:
      return finish(.keepalive, tunnel: nil)
    case .ike:
      _ = packet.trimFront(UDPEncapConstants.nonESPMarkerSize)
      return finish(.ike, tunnel: nil)
    case .malformed:
      return finish(.dropped(.malformed), tunnel: nil)
    case .esp(let spi):
      return inboundESP(&packet, spi: spi, address: address)
    }
  }

  /// An ESP packet (from UDP, or raw IP protocol 50 in replay).
  public func inboundESP(_ packet: inout PacketBuffer, spi: UInt32, address: DatagramAddress) -> Verdict {
    guard let (sa, tunnel) = table.inboundSA(spi: spi) else {
      return finish(.dropped(.unknownSPI), tunnel: nil)
    }
    let payload: ESPPayload
    // The SA's highest sequence number before this packet: only a packet that raises it may move
    // the peer (below).
    let highestBefore = sa.publishedSequence
    do throws(ESPError) {
      payload = try sa.decapsulate(&packet)
    } catch {
      return finish(.dropped(DropReason(error)), tunnel: tunnel)
    }
    sa.markUsed(batchTime)
    if sa.hasLifetimeEvent { noteEvents(sa, tunnel: tunnel) }
    if payload.nextHeader == ESPConstants.nextHeaderNone {
      return finish(.dropped(.dummy), tunnel: tunnel)
    }
    let verdict =
      tunnel.mode == .tunnel
      ? deliverTunnelMode(&packet, nextHeader: payload.nextHeader, tunnel: tunnel)
      : deliverTransportMode(&packet, nextHeader: payload.nextHeader, tunnel: tunnel)
    guard case .decapsulated = verdict else { return finish(verdict, tunnel: tunnel) }

    // Authenticated, replay-checked and accepted: only now may the peer endpoint move (NAT
    // rebinding, RFC 3948 §3.5 leaves it to the implementation; INTERFACE.md `peer`), and only
    // for a packet that raised its SA's highest sequence number: one that arrives late from
    // before a move (reordered, or sent before a MOBIKE update), or a duplicate an SA without a
    // replay window takes, is delivered but moves nothing (a first peer is learned from any).
    // Raw ESP in a capture (no UDP, port 0) says nothing about the peer's UDP endpoint.
    if address.remote.port != 0 && tunnel.peer != address.remote
      && (payload.sequenceNumber > highestBefore || tunnel.peer == nil)
    {
      if let previous = tunnel.peer {
        tunnel.count(TunnelWord.endpointChanges)
        peerEvents.append(PeerEvent(tunnel: tunnel.name, spi: sa.spi, peer: address.remote, previous: previous))
      }
      tunnel.peer = address.remote
    }
    tunnel.localEndpoint = address.local
    tunnel.count(TunnelWord.packetsIn)
    tunnel.count(TunnelWord.bytesIn, UInt64(packet.count))
    return finish(verdict, tunnel: tunnel)
  }

  /// Tunnel mode: the payload must be a whole IP packet of the family Next Header names, from a
  /// source inside the tunnel's `remote_ts`.
  func deliverTunnelMode(_ packet: inout PacketBuffer, nextHeader: UInt8, tunnel: Tunnel) -> Verdict {
    guard let header = IPHeader.parse(packet.bytes),
      (nextHeader == ESPConstants.nextHeaderIPv4 && header.version == 4)
        || (nextHeader == ESPConstants.nextHeaderIPv6 && header.version == 6)
    else { return .dropped(.malformed) }
    guard tunnel.acceptsSource(header.source) else { return .dropped(.selectorMismatch) }
    packet.count = header.totalLength  // drop TFC padding past the stated length (RFC 4303 §2.4)
    return .decapsulated(tunnel: tunnel.index)
  }

  /// Transport mode: rebuild the IP packet from the tunnel's alias to the TUN's own address of that
  /// family, with the TCP/UDP checksum recomputed; learn the flow when the alias is shared.
  func deliverTransportMode(_ packet: inout PacketBuffer, nextHeader: UInt8, tunnel: Tunnel) -> Verdict {
    guard let alias = tunnel.alias else { return .dropped(.noRoute) }
    guard let local = alias.isV6 ? table.tunAddress6 : table.tunAddress4 else { return .dropped(.noRoute) }
    guard TransportMode.rebuild(&packet, proto: nextHeader, source: alias, destination: local) else {
      return .dropped(.malformed)
    }
    if tunnel.sharesAlias, let ports = Pipeline.ports(packet, proto: nextHeader) {
      flows.learn(
        FlowKey(alias: alias, proto: nextHeader, remotePort: ports.source, localPort: ports.destination),
        tunnel: tunnel.index)
    }
    return .decapsulated(tunnel: tunnel.index)
  }

  /// The TCP or UDP ports of an IP packet (nil for other protocols or short segments).
  static func ports(_ packet: PacketBuffer, proto: UInt8) -> (source: UInt16, destination: UInt16)? {
    guard proto == IPProtocol.tcp || proto == IPProtocol.udp, let h = IPHeader.parse(packet.bytes),
      h.totalLength >= h.headerLength + 4
    else { return nil }
    return (packet.uint16(at: h.headerLength), packet.uint16(at: h.headerLength + 2))
  }
}
