// SPDX-License-Identifier: Apache-2.0
// The counters of a running dataplane as one JSON object (`espd stats`, SIGUSR1, exit).

extension Pipeline {
  /// `{"stats":{…}}`: verdict counts, drops by reason, and per tunnel its peer, packets, bytes,
  /// endpoint changes, keepalives and drops.
  public func statsJSON(extra: [(String, UInt64)] = []) -> String {
    func drops(_ d: DropCounters) -> String {
      "{" + DropReason.allCases.map { "\"\($0.name)\":\(d[$0])" }.joined(separator: ",") + "}"
    }
    let c = counters
    var s = "{\"stats\":{\"decapsulated\":\(c.decapsulated),\"encapsulated\":\(c.encapsulated)"
    s += ",\"ike\":\(c.ike),\"keepalive\":\(c.keepalive),\"passed\":\(c.passed),\"dropped\":\(c.drops.total)"
    for (k, v) in extra { s += ",\"\(k)\":\(v)" }
    s += ",\"drops\":\(drops(c.drops)),\"tunnels\":["
    s += table.tunnels.map { t in
      let k = t.counters
      let peer = t.peer.map { "\"\($0)\"" } ?? "null"
      return
        "{\"name\":\(JSONValue.string(t.name).jsonText),\"peer\":\(peer),\"packets_in\":\(k.packetsIn),\"bytes_in\":\(k.bytesIn)"
        + ",\"packets_out\":\(k.packetsOut),\"bytes_out\":\(k.bytesOut),\"endpoint_changes\":\(k.endpointChanges)"
        + ",\"keepalives_sent\":\(t.keepalivesSent),\"drops\":\(drops(k.drops))}"
    }.joined(separator: ",")
    return s + "]}}"
  }
}
