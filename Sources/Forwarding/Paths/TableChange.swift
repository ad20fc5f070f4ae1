// SPDX-License-Identifier: Apache-2.0
// What the control thread asks a worker to change in its lookup tables, between batches
// (``Pipeline/apply(_:discard:)``); the queue that carries it is the I/O module's ChangeQueue.
import ESP

/// One change to a worker's tables. Every worker applies every change, in order; the parts that
/// touch a tunnel's own state (its SAs, its sweep lists, its learned flows) only the owner applies.
package enum TableChange {
  /// A new tunnel in its slot, its SPIs and routes; `alias`: its alias's entry afterwards.
  case addTunnel(TableEntry, alias: AliasChange?)
  /// A tunnel leaves its slot, with its SPIs and routes; `alias`: its alias's entry afterwards.
  case removeTunnel(TableEntry, alias: AliasChange?)
  /// A tunnel changed by a reload: `old`'s entries out of the slot, `new`'s in; the owner carries
  /// the run-time state over (both have the same owner; otherwise the control thread removes,
  /// waits and adds).
  case replaceTunnel(old: TableEntry, new: TableEntry, aliases: [AliasChange])
  /// An inbound SA joins a tunnel (a rekey).
  case addInbound(Tunnel, InboundSA)
  /// An inbound SA leaves a tunnel.
  case removeInbound(Tunnel, spi: UInt32)
  /// A tunnel's outbound SA is switched.
  case setOutbound(Tunnel, OutboundSA)
  /// A tunnel's peer moved (`update_tunnel`), and its local address if given (owner only).
  case setPeer(Tunnel, Endpoint, local: IPAddress?)
  /// Larger lookup tables with the same contents, built by the control thread for this worker alone.
  case tables(IndexTables)
  /// The NAT-keepalive interval changed (ns; 0: off).
  case keepalive(UInt64)
}

/// An alias's entry in the alias table after a change, and the tunnels whose `sharesAlias` flips.
package struct AliasChange {
  package var key: MaskedAddress
  /// The slot, ``LookupTables/sharedAlias``, or nil (the alias is gone).
  package var value: Int32?
  /// Tunnels that share the alias from now on, and tunnels that no longer do (owner: same for all).
  package var sharing: [Tunnel] = []
  package var alone: [Tunnel] = []

  package init(key: MaskedAddress, value: Int32?, sharing: [Tunnel] = [], alone: [Tunnel] = []) {
    self.key = key
    self.value = value
    self.sharing = sharing
    self.alone = alone
  }
}

/// The lookup tables of a worker, replaced whole when they must grow.
package struct IndexTables {
  package var spiIndex: OpenAddressingTable<SPIKey>
  package var routes: RouteTable
  package var aliases: OpenAddressingTable<MaskedAddress>

  package init(
    spiIndex: OpenAddressingTable<SPIKey>, routes: RouteTable, aliases: OpenAddressingTable<MaskedAddress>
  ) {
    self.spiIndex = spiIndex
    self.routes = routes
    self.aliases = aliases
  }
}
