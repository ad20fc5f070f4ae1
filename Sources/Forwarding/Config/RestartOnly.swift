// SPDX-License-Identifier: Apache-2.0
// The settings a reload (SIGHUP) cannot change: declared once, with the name the log gives them,
// for both the check and its message.

/// A setting read only at start: how to tell two configurations apart in it, and how to keep the
/// running value when a reload brings another.
public struct RestartOnlySetting: Sendable {
  /// Its name in the reload warning (`listen`, `tun`, `the IKE limits`).
  public let name: String
  private let differs: @Sendable (Config, Config) -> Bool
  fileprivate let keep: @Sendable (inout Config, Config) -> Void

  init(
    _ name: String, differs: @escaping @Sendable (Config, Config) -> Bool,
    keep: @escaping @Sendable (inout Config, Config) -> Void
  ) {
    self.name = name
    self.differs = differs
    self.keep = keep
  }

  /// A setting held in the configuration fields at `paths` (all of one type).
  init<V: Equatable>(_ name: String, _ paths: (WritableKeyPath<Config, V> & Sendable)...) {
    self.init(
      name, differs: { a, b in paths.contains { a[keyPath: $0] != b[keyPath: $0] } },
      keep: { new, old in for p in paths { new[keyPath: p] = old[keyPath: p] } })
  }

  /// Whether `new` changes the setting from `old`.
  public func changed(from old: Config, to new: Config) -> Bool { differs(old, new) }
}

extension Config {
  /// Every setting a reload cannot change, in the order the warning names them. Everything else
  /// (the tunnels, `nat_keepalive_seconds`, `metrics_per_tunnel` and the other limits) is applied.
  public static let restartOnly: [RestartOnlySetting] = [
    RestartOnlySetting("listen", \.listen),
    RestartOnlySetting(
      "tun",
      differs: { $0.tun.name != $1.tun.name || $0.tun.addresses != $1.tun.addresses || $0.tun.mtu != $1.tun.mtu },
      keep: { $0.tun = $1.tun }),
    RestartOnlySetting(
      "ike",
      differs: { $0.ikePunt != $1.ikePunt || $0.ikePuntLocal != $1.ikePuntLocal || $0.ikeListen != $1.ikeListen },
      keep: {
        $0.ikePunt = $1.ikePunt
        $0.ikePuntLocal = $1.ikePuntLocal
        $0.ikeListen = $1.ikeListen
      }),
    RestartOnlySetting("control", \.control),
    RestartOnlySetting("metrics", \.metrics),
    RestartOnlySetting("transport_alias_pool", \.transportAliasPool),
    RestartOnlySetting("udp_receive_buffer", \.udpReceiveBuffer),
    RestartOnlySetting("udp_send_buffer", \.udpSendBuffer),
    RestartOnlySetting(
      "the IKE limits", \.limits.ikeQueueBytes, \.limits.ikePerSecond, \.limits.ikePerSourcePerSecond),
  ]

  /// The settings of ``restartOnly`` that `new` changes.
  public func restartOnlyChanges(in new: Config) -> [RestartOnlySetting] {
    Config.restartOnly.filter { $0.changed(from: self, to: new) }
  }

  /// `new` with every restart-only setting as it is here (what a reload applies).
  public func keepingRestartOnly(of new: Config) -> Config {
    var kept = new
    for s in Config.restartOnly { s.keep(&kept, self) }
    return kept
  }

  /// The warning a reload logs when it changes a restart-only setting.
  public static var restartOnlyWarning: String {
    let names = restartOnly.map(\.name)
    return "reload: changes to \(names.dropLast().joined(separator: ", ")) or \(names.last ?? "") need a restart;"
      + " applying the tunnels, nat_keepalive_seconds, metrics_per_tunnel and the other limits only"
  }
}
