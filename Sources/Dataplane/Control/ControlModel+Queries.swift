// SPDX-License-Identifier: Apache-2.0
// `query_sa`, `list` with `names_only`, and `update_tunnel`: one tunnel at a time, through the
// indexes (constant time in the number of tunnels, except the names list).
import ESP
import Forwarding

extension ControlModel {
  /// `query_sa`: one SA's packets, bytes and milliseconds since its last use (null: never used).
  /// - Parameter now: the control thread's monotonic ns (the SAs' stamps are the workers' batch times).
  /// - Returns: the answer's members after `"ok":true`, or the refusal.
  func query(name: String, spi: UInt32, direction: SADirection, now: UInt64) -> Result<
    [(key: String, value: JSONValue)], ControlError
  > {
    guard let r = record(named: name) else { return .failure(ControlModel.noTunnel(name)) }
    let packets: UInt64
    let bytes: UInt64
    let last: UInt64
    switch direction {
    case .inbound:
      guard let sa = r.inbound.first(where: { $0.spi == spi }) else {
        return .failure(
          ControlError("tunnel \(JSONValue.quoted(name)) has no inbound SA \(ConfigParser.spiText(spi))"))
      }
      (packets, bytes, last) = (sa.packets, sa.bytes, sa.lastUsed)
    case .outbound:
      let sa = r.outbound
      guard sa.spi == spi else {
        return .failure(
          ControlError(
            "tunnel \(JSONValue.quoted(name)) has outbound SA \(ConfigParser.spiText(sa.spi)), not \(ConfigParser.spiText(spi))"
          ))
      }
      (packets, bytes, last) = (sa.packets, sa.bytes, sa.lastUsed)
    }
    let idle: JSONValue = last == 0 ? .null : .integer((now > last ? now - last : 0) / 1_000_000)
    return .success([("packets", .integer(packets)), ("bytes", .integer(bytes)), ("idle_ms", idle)])
  }

  /// `{"op":"list","names_only":true}`: the names, sorted, of the tunnels beginning with `prefix`.
  func names(prefix: String?) -> [(key: String, value: JSONValue)] {
    var list = byName.keys.filter { prefix.map($0.hasPrefix) ?? true }
    list.sort()
    return [("names", .array(list.map(JSONValue.string)))]
  }

  /// `{"spi":"0x…","packets":N,"bytes":N}`.
  static func countersValue(_ spi: UInt32, _ packets: UInt64, _ bytes: UInt64) -> JSONValue {
    .object([("spi", .string(ConfigParser.spiText(spi))), ("packets", .integer(packets)), ("bytes", .integer(bytes))])
  }

  /// `update_tunnel`: the tunnel's peer (and local address) from now on; its SAs, counters and
  /// learned flows stay. The owner worker applies it from its change queue.
  func updateTunnel(name: String, peer: Endpoint, local: IPAddress?) -> Result<Void, ControlError> {
    guard let r = record(named: name) else { return .failure(ControlModel.noTunnel(name)) }
    if local == nil, let l = r.config.local, l.isV6 != peer.address.isV6 {
      return .failure(
        ControlError(
          "peer: \(peer) is not of the family of the tunnel's local address \(l) (give a local address of its family)"))
    }
    r.config.peer = peer
    if let local { r.config.local = local }
    push([.setPeer(r.tunnel, peer, local: local)])
    return .success(())
  }
}
