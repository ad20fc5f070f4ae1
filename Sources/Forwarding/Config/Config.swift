// SPDX-License-Identifier: Apache-2.0
// The validated configuration (INTERFACE.md "Configuration file"): plain values, no I/O.
import ESP

/// An address and a UDP port (`"203.0.113.7:4500"`, `"[2001:db8::1]:4500"`).
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
  public var address: IPAddress
  public var port: UInt16
  public init(address: IPAddress, port: UInt16) {
    self.address = address
    self.port = port
  }
  public var description: String { address.isV6 ? "[\(address)]:\(port)" : "\(address):\(port)" }
}

/// An address prefix (`"198.51.100.0/24"`); host bits beyond `length` are zero.
public struct Prefix: Hashable, Sendable, CustomStringConvertible {
  public var address: IPAddress
  public var length: Int
  public init(address: IPAddress, length: Int) {
    self.address = address
    self.length = length
  }
  public var description: String { "\(address)/\(length)" }
}

/// Where IKE datagrams (those behind the non-ESP marker) are sent.
public enum PuntTarget: Hashable, Sendable {
  case udp(Endpoint)
  case unix(String)
}

/// `tunnel` (whole inner IP packets) or `transport` (upper-layer payload; L2TP/IPsec).
public enum TunnelMode: String, Sendable {
  case tunnel, transport
}

/// SA lifetimes (all optional). Soft limits raise an event, hard limits stop the SA.
public struct Lifetime: Hashable, Sendable {
  public var bytesSoft: UInt64?
  public var bytesHard: UInt64?
  public var packetsSoft: UInt64?
  public var packetsHard: UInt64?
  public var secondsSoft: UInt64?
  public var secondsHard: UInt64?
  public init() {}
}

/// One SA as configured. Keys are kept only until the SA objects are built.
public struct SAConfig: Sendable, Equatable {
  public var spi: UInt32
  public var algorithm: ESPAlgorithm
  public var key: [UInt8]
  public var authKey: [UInt8]
  public var esn: Bool
  /// Inbound only: anti-replay window in packets (default 1024; 0 disables).
  public var replayWindow: Int
  /// Outbound only: the last sequence number used (`seq`).
  public var sequenceNumber: UInt64
  /// Inbound only: the highest sequence number already seen (`replay_seq`).
  public var replaySequence: UInt64
  /// Boxed: most SAs have none, and a concentrator keeps two SAs' configuration per tunnel (eight
  /// bytes each instead of a hundred).
  private var lifetimeBox: LifetimeBox?
  public var lifetime: Lifetime? {
    get { lifetimeBox?.value }
    set { lifetimeBox = newValue.map(LifetimeBox.init) }
  }

  public init(
    spi: UInt32, algorithm: ESPAlgorithm, key: [UInt8], authKey: [UInt8] = [], esn: Bool = false,
    replayWindow: Int = ESPConstants.defaultReplayWindow, sequenceNumber: UInt64 = 0, replaySequence: UInt64 = 0,
    lifetime: Lifetime? = nil
  ) {
    self.spi = spi
    self.algorithm = algorithm
    self.key = key
    self.authKey = authKey
    self.esn = esn
    self.replayWindow = replayWindow
    self.sequenceNumber = sequenceNumber
    self.replaySequence = replaySequence
    self.lifetimeBox = lifetime.map(LifetimeBox.init)
  }
}

extension SAConfig {
  /// Overwrites this copy's key material with zeros (best effort: Swift arrays are values, so only
  /// the storage this copy owns is wiped).
  public mutating func wipeKeys() {
    KeyMaterial.wipe(&key)
    KeyMaterial.wipe(&authKey)
  }
}

/// An SA's lifetime, immutable, behind one reference.
final class LifetimeBox: Equatable, Sendable {
  let value: Lifetime
  init(_ value: Lifetime) { self.value = value }
  static func == (a: LifetimeBox, b: LifetimeBox) -> Bool { a.value == b.value }
}

/// One tunnel as configured.
public struct TunnelConfig: Sendable {
  public var name: String
  public var mode: TunnelMode
  /// The remote outer endpoint; nil on a responder until learned from an authenticated packet.
  public var peer: Endpoint?
  /// Tunnel mode: inner prefixes routed into this tunnel and accepted as inner sources from it.
  public var remoteTS: [Prefix]
  /// Transport mode: the address standing for the remote end on the TUN side, explicit or
  /// allocated from `transport_alias_pool` (always set for a validated transport tunnel).
  public var alias: IPAddress?
  /// The outer source address to use when a listen address is a wildcard.
  public var local: IPAddress?
  public var inbound: [SAConfig]
  public var outbound: SAConfig
  /// Whether espd sends NAT-keepalives to a configured peer (`nat_keepalive`, default true); false
  /// when the IKE daemon sends them itself, from the side behind the NAT only.
  public var natKeepalive: Bool

  public init(
    name: String, mode: TunnelMode, peer: Endpoint? = nil, remoteTS: [Prefix] = [], alias: IPAddress? = nil,
    local: IPAddress? = nil, inbound: [SAConfig], outbound: SAConfig, natKeepalive: Bool = true
  ) {
    self.natKeepalive = natKeepalive
    self.name = name
    self.mode = mode
    self.peer = peer
    self.remoteTS = remoteTS
    self.alias = alias
    self.local = local
    self.inbound = inbound
    self.outbound = outbound
  }
}

/// The TUN device.
public struct TunConfig: Sendable {
  public var name: String
  public var mtu: Int
  /// Addresses with their prefix lengths (`198.51.100.1/24`), assigned by espd.
  public var addresses: [Prefix]
  /// Packets the kernel queues for espd to read (`txqueuelen`): room for a scheduling hiccup on the
  /// outbound side, as the listen sockets' buffers are on the inbound one (the kernel's TUN default
  /// is 500, 24 ms at 200 Mbit/s of 1200-byte packets).
  public var txQueueLength = 1000
  public init(name: String = "espd0", mtu: Int = 1400, addresses: [Prefix] = []) {
    self.name = name
    self.mtu = mtu
    self.addresses = addresses
  }
}

/// The whole validated configuration.
public struct Config: Sendable {
  public var listen: [Endpoint]
  public var tun: TunConfig
  public var natKeepaliveSeconds: Int
  public var ikePunt: PuntTarget?
  /// `ike.punt_local`: espd's own end of the punt channel, at a fixed address the IKE daemon can
  /// be told (nil: an address of the kernel's choosing).
  public var ikePuntLocal: PuntTarget?
  /// `ike.listen`: UDP sockets where every datagram is IKE, without a non-ESP marker (port 500).
  public var ikeListen: [Endpoint] = []
  public var control: String
  public var metrics: Endpoint?
  public var transportAliasPool: Prefix?
  public var tunnels: [TunnelConfig]
  public var limits: Limits
  /// Receive and send buffer of each listen socket, in bytes (set with SO_RCVBUFFORCE and
  /// SO_SNDBUFFORCE, so above the sysctl maxima): room for a scheduling hiccup at full rate.
  public var udpReceiveBuffer: Int = Config.defaultUDPBuffer
  public var udpSendBuffer: Int = Config.defaultUDPBuffer
  /// Whether `GET /metrics` has per-tunnel series (off for very large tunnel counts).
  public var metricsPerTunnel = true
  /// The listen sockets' default buffers: 8 MiB each way (as wireguard-go asks for 7 MiB).
  public static let defaultUDPBuffer = 8 << 20

  public init(
    listen: [Endpoint], tun: TunConfig = TunConfig(), natKeepaliveSeconds: Int = 20, ikePunt: PuntTarget? = nil,
    control: String = "/run/espd/control.sock", metrics: Endpoint? = nil, transportAliasPool: Prefix? = nil,
    tunnels: [TunnelConfig] = [], limits: Limits = Limits()
  ) {
    self.limits = limits
    self.listen = listen
    self.tun = tun
    self.natKeepaliveSeconds = natKeepaliveSeconds
    self.ikePunt = ikePunt
    self.control = control
    self.metrics = metrics
    self.transportAliasPool = transportAliasPool
    self.tunnels = tunnels
  }
}
