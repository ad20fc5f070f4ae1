// SPDX-License-Identifier: Apache-2.0
// In-memory UDP for the loop tests (wireguard-go's conn.Bind fakes): sockets on hosts, a network
// that carries datagrams between them, and a NAT whose mapping a test can change (rebinding).
import ESP
import Forwarding

@testable import Dataplane

/// One datagram on the network, as it left its sender (before any NAT) and where it went.
struct Datagram: Equatable {
  var bytes: [UInt8]
  var from: Endpoint
  var to: Endpoint
}

/// Carries datagrams between ``MemorySocket``s, translating sources through ``nat``.
final class MemoryNetwork {
  private var sockets: [MemorySocket] = []
  /// Source endpoint → the endpoint it has outside (a NAT); the reverse maps replies back.
  var nat: [Endpoint: Endpoint] = [:]
  /// Every datagram sent, in order (the test's capture).
  private(set) var sent: [Datagram] = []
  /// Datagrams no socket was bound to receive.
  private(set) var undeliverable = 0

  func attach(_ s: MemorySocket) { sockets.append(s) }

  func send(_ bytes: [UInt8], from: Endpoint, to: Endpoint) {
    sent.append(Datagram(bytes: bytes, from: from, to: to))
    let source = nat[from] ?? from
    let destination = nat.first { $0.value == to }?.key ?? to
    guard
      let s = sockets.first(where: { $0.local == destination })
        ?? sockets.first(where: {
          $0.local.port == destination.port && $0.local.address.isUnspecifiedAddress && $0.host == destination.address
        })
    else {
      undeliverable += 1
      return
    }
    s.queue.append(Datagram(bytes: bytes, from: source, to: destination))
  }
}

/// A UDP socket on a host of the ``MemoryNetwork``.
final class MemorySocket: DatagramSocket {
  let local: Endpoint
  /// The host's address: the source of what it sends from a wildcard socket.
  let host: IPAddress
  /// Unowned: the network holds its sockets (a strong reference back would be a cycle, a leak).
  unowned let network: MemoryNetwork
  var queue: [Datagram] = []

  init(local: Endpoint, host: IPAddress? = nil, on network: MemoryNetwork) {
    self.local = local
    self.host = host ?? local.address
    self.network = network
    network.attach(self)
  }

  func receive(into batch: DatagramBatch, max: Int) -> Int {
    var n = 0
    while n < max, !queue.isEmpty {
      let d = queue.removeFirst()
      d.bytes.withUnsafeBytes {
        (batch.slot(n) + batch.headroom).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
      }
      batch.packets[n] = PacketBuffer(
        base: batch.slot(n), capacity: batch.slotSize, start: batch.headroom, count: d.bytes.count)
      batch.addresses[n] = DatagramAddress(remote: d.from, local: d.to)
      n += 1
    }
    return n
  }

  func send(_ batch: DatagramBatch, indices: [Int]) -> Int {
    for i in indices {
      let a = batch.addresses[i]
      network.send(Array(batch.packets[i].bytes), from: source(a.local.address), to: a.remote)
    }
    return indices.count
  }

  func send(_ bytes: UnsafeRawBufferPointer, to remote: Endpoint, from source: IPAddress) throws(SystemError) -> Bool {
    network.send(Array(bytes), from: self.source(source), to: remote)
    return true
  }

  private func source(_ address: IPAddress) -> Endpoint {
    Endpoint(address: address.isUnspecifiedAddress ? host : address, port: local.port)
  }
}
