// SPDX-License-Identifier: Apache-2.0
// The outbound path: find the tunnel for an inner packet (alias, learned flow, longest prefix),
// seal it in place, and address the datagram to the tunnel's current peer (DESIGN.md, "Outbound").
import ESP

extension Pipeline {
  /// Processes a batch of packets read from the TUN, in place.
  /// - Parameters:
  ///   - packets: IP packets; each encapsulated one becomes the ESP packet (UDP payload).
  ///   - addresses: receives, for each encapsulated packet, the peer (remote) and the local endpoint
  ///     to send from.
  ///   - verdicts: receives one verdict per packet.
  ///   - count: packets in the batch.
  public func outbound(
    _ packets: UnsafeMutablePointer<PacketBuffer>, addresses: UnsafeMutablePointer<DatagramAddress>,
    verdicts: UnsafeMutablePointer<Verdict>, count: Int
  ) {
    for i in 0..<count {
      verdicts[i] = outbound(&packets[i], address: &addresses[i])
    }
  }

  /// Where an inner packet's destination leads, from the immutable tables alone: a tunnel (by its
  /// transport alias, else the longest `remote_ts` prefix), an alias several tunnels share (the
  /// learned flows decide), or nowhere.
  enum RouteTarget {
    case tunnel(Int32)
    case sharedAlias
    case none
  }

  @inline(__always)
  func routeTarget(_ destination: IPAddress) -> RouteTarget {
    if let t = table.aliases.lookup(RouteTable.mask(destination, destination.isV6 ? 128 : 32)) {
      return t == LookupTables.sharedAlias ? .sharedAlias : .tunnel(t)
    }
    if let t = table.routes.lookup(destination) { return .tunnel(t) }
    return .none
  }

  /// The tunnel an inner packet is routed into, or nil. Transport aliases first, then the longest
  /// `remote_ts` prefix. A shared alias needs a learned flow for the packet's ports. (The lookups
  /// of ``routeTarget(_:)``, written out: through the enum the encap pipeline measured 2% slower
  /// at 512 B.)
  public func route(_ header: IPHeader, _ packet: PacketBuffer) -> Tunnel? {
    let key = RouteTable.mask(header.destination, header.destination.isV6 ? 128 : 32)
    if let t = table.aliases.lookup(key) {
      if t != LookupTables.sharedAlias { return table.slots[Int(t)] }
      guard let ports = Pipeline.ports(packet, proto: header.proto),
        let learned = flows.lookup(
          FlowKey(
            alias: header.destination, proto: header.proto, remotePort: ports.destination,
            localPort: ports.source))
      else { return nil }
      guard let t = table.slots[Int(learned)], t.alias == header.destination else { return nil }
      return owns(t) ? t : nil  // (install drops flows of tunnels another worker owns; never trust that alone)
    }
    guard let t = table.routes.lookup(header.destination) else { return nil }
    return table.slots[Int(t)]
  }

  /// Whether an inner packet would be routed into a tunnel (replay uses it to tell `passed` apart).
  public func isRouted(_ packet: PacketBuffer) -> Bool {
    guard let h = IPHeader.parse(packet.bytes) else { return false }
    if case .none = routeTarget(h.destination) { return false }
    return true
  }

  /// One packet from the TUN.
  public func outbound(_ packet: inout PacketBuffer, address: inout DatagramAddress) -> Verdict {
    guard let header = IPHeader.parse(packet.bytes) else { return finish(.dropped(.malformed), tunnel: nil) }
    guard let tunnel = route(header, packet) else { return finish(.dropped(.noRoute), tunnel: nil) }
    guard let peer = tunnel.peer else { return finish(.dropped(.noPeer), tunnel: tunnel) }
    let nextHeader: UInt8
    if tunnel.mode == .transport {
      guard let h = TransportMode.strip(&packet) else { return finish(.dropped(.malformed), tunnel: tunnel) }
      nextHeader = h.proto
    } else {
      packet.count = header.totalLength
      nextHeader = header.version == 4 ? ESPConstants.nextHeaderIPv4 : ESPConstants.nextHeaderIPv6
    }
    let length = packet.count
    // The ESP packet must fit one UDP datagram (IPv4: 65535 - 20 - 8; IPv6: 65535 - 8). Checked
    // before sealing so that no sequence number is spent on a packet that cannot be sent.
    let maxPayload = peer.address.isV6 ? 65535 - 8 : 65535 - 20 - 8
    guard length + tunnel.outbound.maxOverhead <= maxPayload else {
      return finish(.dropped(.tooBig), tunnel: tunnel)
    }
    do throws(ESPError) {
      try tunnel.outbound.encapsulate(&packet, nextHeader: nextHeader)
    } catch {
      return finish(.dropped(DropReason(error)), tunnel: tunnel)
    }
    tunnel.outbound.markUsed(batchTime)
    if tunnel.outbound.hasLifetimeEvent { noteEvents(tunnel.outbound, tunnel: tunnel) }
    address = DatagramAddress(remote: peer, local: sourceEndpoint(for: tunnel, peer: peer))
    tunnel.count(TunnelWord.packetsOut)
    tunnel.count(TunnelWord.bytesOut, UInt64(length))
    return finish(.encapsulated(tunnel: tunnel.index), tunnel: tunnel)
  }

  /// Where a tunnel's datagrams leave from: the local endpoint the peer last reached, else the
  /// tunnel's `local` address on the first listen port of the peer's family, else that listen entry.
  package func sourceEndpoint(for tunnel: Tunnel, peer: Endpoint) -> Endpoint {
    if let l = tunnel.localEndpoint, l.address.isV6 == peer.address.isV6 { return l }
    let listen = table.listen.first { $0.address.isV6 == peer.address.isV6 } ?? table.listen.first
    let port = listen?.port ?? 4500
    if let local = tunnel.local { return Endpoint(address: local, port: port) }
    return listen ?? Endpoint(address: peer.address.isV6 ? .v6(0, 0) : .v4(0), port: port)
  }
}
