// SPDX-License-Identifier: Apache-2.0
// A tunnel's peer moved on an authenticated packet (NAT rebinding): the `peer` event subscribers get.
import ESP

/// `{"event":"peer","tunnel":…,"spi":…,"peer":"ip:port","previous":"ip:port"}`: raised by the
/// worker that owns the tunnel, once per move, and passed to subscribers by the control thread.
public struct PeerEvent: Sendable, Equatable {
  public let tunnel: String
  /// The inbound SA that authenticated the packet from the new endpoint.
  public let spi: UInt32
  public let peer: Endpoint
  public let previous: Endpoint
  public init(tunnel: String, spi: UInt32, peer: Endpoint, previous: Endpoint) {
    self.tunnel = tunnel
    self.spi = spi
    self.peer = peer
    self.previous = previous
  }

  /// The event line.
  public var json: String {
    JSONValue.object([
      ("event", .string("peer")), ("tunnel", .string(tunnel)), ("spi", .string(LookupTables.hexSPI(spi))),
      ("peer", .string("\(peer)")), ("previous", .string("\(previous)")),
    ]).jsonText
  }
}
