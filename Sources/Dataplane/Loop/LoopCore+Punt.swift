// SPDX-License-Identifier: Apache-2.0
// The IKE side of a loop: the daemon's replies go out (with the marker on the listen ports, as
// they are on the `ike.listen` ports), and datagrams to the `ike.listen` ports go to the daemon.
import ESP
import Forwarding
import UDPEncap

#if canImport(Glibc)
  import Glibc
#endif

extension LoopCore {
  /// Everything the punt channel's poll descriptor woke the loop for: the daemon's replies, and
  /// port-500 datagrams.
  func servicePunt() {
    forwardPuntReplies()
    punt?.readListeners()
  }

  /// Sends every reply the IKE daemon has queued from the socket its header's source names:
  /// as it is from an `ike.listen` socket or when the header asks for it (``PuntHeader/raw``: a
  /// NAT-T keepalive), else behind the non-ESP marker from a listen socket (RFC 3948 §2.2).
  func forwardPuntReplies() {
    guard let punt else { return }
    var out = [UInt8](repeating: 0, count: 0)
    // At most a batch per wake-up: the poll descriptor stays readable for the rest.
    for _ in 0..<PuntChannel.listenBatch {
      guard let (header, ike) = punt.receive() else { return }
      let (source, destination) = PuntChannel.endpoints(header)
      if let l = LoopCore.listener(for: source, in: punt.listeners) {
        if !((try? l.send(ike, to: destination, from: source.address)) ?? false) { puntReplyDropped &+= 1 }
        continue
      }
      // A listen socket of the reply's port, never another port's (a reply from port 500 sent
      // from 4500 behind a marker would reach nobody).
      guard let i = replySocketIndex(for: source) else {
        puntReplyDropped &+= 1
        continue
      }
      out.removeAll(keepingCapacity: true)
      if !header.raw { out += [0, 0, 0, 0] }
      out += ike
      if !(out.withUnsafeBytes { (try? outer[i].send($0, to: destination, from: source.address)) ?? false }) {
        puntReplyDropped &+= 1
      }
    }
  }

  /// The listen socket for a reply from `source`: bound to it, else the wildcard of its family on
  /// its port, else any of its family on its port; nil if none has that port.
  func replySocketIndex(for source: Endpoint) -> Int? {
    let port = outer.indices.filter {
      outer[$0].local.port == source.port && outer[$0].local.address.isV6 == source.address.isV6
    }
    return port.first { sockets[$0].local == source } ?? port.first { sockets[$0].local.address.isUnspecified }
      ?? port.first
  }

  /// The `ike.listen` socket bound to `source`, else the wildcard of its family on its port, else
  /// any of its family on its port (the address goes with the datagram: IP_PKTINFO).
  static func listener(for source: Endpoint, in listeners: [UDPSocket]) -> UDPSocket? {
    let port = listeners.filter { $0.local.port == source.port && $0.local.address.isV6 == source.address.isV6 }
    return port.first { $0.local == source } ?? port.first { $0.local.address.isUnspecified } ?? port.first
  }
}
