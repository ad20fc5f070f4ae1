// SPDX-License-Identifier: Apache-2.0
// The configuration parser: the INTERFACE.md example, defaults, one exact line per rule, cross-tunnel checks.
import ESP
import Testing

@testable import Dataplane
@testable import Forwarding

/// Builds configuration texts: a valid base, with the piece under test swapped in.
private enum ConfigFixture {
  static func hex(_ n: Int, from start: Int = 0) -> String {
    (0..<n).map { i in
      let h = String((start + i) & 0xFF, radix: 16)
      return h.count == 1 ? "0" + h : h
    }.joined()
  }
  static let gcm128Key = hex(20)
  static let chachaKey = hex(36)
  static let hmacKey = hex(32, from: 0x40)

  /// An SA object; `extra` is spliced in (`"esn": true`), `spi` is JSON text.
  static func sa(
    spi: String = #""0xc1a0b001""#, alg: String = "aes128gcm16", key: String? = gcm128Key, _ extra: String = ""
  )
    -> String
  {
    var fields = [#""spi": \#(spi)"#, #""alg": "\#(alg)""#]
    if let key { fields.append(#""key": "\#(key)""#) }
    if !extra.isEmpty { fields.append(extra) }
    return "{" + fields.joined(separator: ", ") + "}"
  }

  /// A tunnel object; `fields` replaces everything but name, inbound and outbound.
  static func tunnel(
    name: String = "alice", _ fields: String = #""remote_ts": ["10.1.0.0/16"]"#, inbound: [String]? = nil,
    outbound: String? = nil
  ) -> String {
    let inbound = inbound ?? [sa()]
    let outbound = outbound ?? sa(spi: #""0x00a1b2c3""#)
    let head = fields.isEmpty ? "" : fields + ", "
    return #"{"name": "\#(name)", \#(head)"inbound": [\#(inbound.joined(separator: ", "))], "outbound": \#(outbound)}"#
  }

  /// A whole configuration; `root` is spliced in after `listen`.
  static func config(_ root: String = "", listen: String = #"["0.0.0.0:4500"]"#, tunnels: [String] = [tunnel()])
    -> String
  {
    let extra = root.isEmpty ? "" : root + ", "
    return #"{"listen": \#(listen), \#(extra)"tunnels": [\#(tunnels.joined(separator: ", "))]}"#
  }

  /// Two tunnels with distinct SPIs and prefixes; the second gets `inbound`/`outbound`/`fields`.
  static func second(
    _ fields: String = #""remote_ts": ["10.2.0.0/16"]"#, inbound: [String]? = nil, outbound: String? = nil
  )
    -> String
  {
    config(tunnels: [
      tunnel(),
      tunnel(
        name: "bob", fields, inbound: inbound ?? [sa(spi: #""0xb0b00001""#)],
        outbound: outbound ?? sa(spi: #""0xb0b00002""#)),
    ])
  }
}

/// One rule and the single line it must produce.
struct ConfigProblemCase: Sendable, CustomTestStringConvertible {
  let json: String
  let line: String
  init(_ json: String, _ line: String) {
    self.json = json
    self.line = line
  }
  var testDescription: String { line }
}

@Suite struct ConfigParserTests {
  static func problems(_ json: String) -> [String] {
    switch ConfigParser.parse(json) {
    case .success: []
    case .failure(let e): e.problems
    }
  }

  static func parsed(_ json: String) throws -> Config {
    try ConfigParser.parse(json).get()
  }

  /// The example of INTERFACE.md, with real keys.
  static let interfaceExample = """
    {
      "listen": ["0.0.0.0:4500"],
      "tun": { "name": "espd0", "mtu": 1400, "addresses": ["198.51.100.1/24"] },
      "nat_keepalive_seconds": 20,
      "ike": { "punt": "udp:127.0.0.1:4501" },
      "control": "/run/espd/control.sock",
      "metrics": "127.0.0.1:9469",
      "tunnels": [
        {
          "name": "alice",
          "mode": "tunnel",
          "peer": "203.0.113.7:4500",
          "remote_ts": ["198.51.100.10/32"],
          "inbound":  [ { "spi": "0xc1a0b001", "alg": "aes128gcm16", "key": "\(ConfigFixture.gcm128Key)", "esn": false, "replay_window": 1024 } ],
          "outbound":   { "spi": "0x00a1b2c3", "alg": "aes128gcm16", "key": "0x\(ConfigFixture.hex(20, from: 0x80))" }
        }
      ]
    }
    """

  @Test func theIKEObjectTakesPuntLocalAndListen() throws {
    let c = try ConfigParser.parse(
      ConfigFixture.config(
        #""ike": {"punt": "unix:/run/espd/ike.sock", "punt_local": "unix:/run/espd/ike-espd.sock", "listen": ["0.0.0.0:500", "[::]:500"]}"#
      )
    ).get()
    #expect(c.ikePunt == .unix("/run/espd/ike.sock") && c.ikePuntLocal == .unix("/run/espd/ike-espd.sock"))
    #expect(c.ikeListen.map(\.description) == ["0.0.0.0:500", "[::]:500"])
  }

  @Test func interfaceExampleParses() throws {
    let c = try Self.parsed(Self.interfaceExample)
    #expect(c.listen == [Endpoint(address: .v4(0), port: 4500)])
    #expect(c.tun.name == "espd0" && c.tun.mtu == 1400)
    #expect(c.tun.addresses == [Prefix(address: IPAddress("198.51.100.1")!, length: 24)])
    #expect(c.natKeepaliveSeconds == 20)
    #expect(c.ikePunt == .udp(Endpoint(address: IPAddress("127.0.0.1")!, port: 4501)))
    #expect(c.control == "/run/espd/control.sock")
    #expect(c.metrics == Endpoint(address: IPAddress("127.0.0.1")!, port: 9469))
    #expect(c.transportAliasPool == nil)
    let t = try #require(c.tunnels.first)
    #expect(c.tunnels.count == 1)
    #expect(t.name == "alice" && t.mode == .tunnel && t.alias == nil && t.local == nil)
    #expect(t.peer == Endpoint(address: IPAddress("203.0.113.7")!, port: 4500))
    #expect(t.remoteTS == [Prefix(address: IPAddress("198.51.100.10")!, length: 32)])
    let inbound = try #require(t.inbound.first)
    #expect(inbound.spi == 0xc1a0_b001 && inbound.algorithm == .aes128gcm16 && !inbound.esn)
    #expect(inbound.key == Array(0..<20) && inbound.authKey.isEmpty && inbound.replayWindow == 1024)
    #expect(t.outbound.spi == 0x00a1_b2c3 && t.outbound.key == Array(0x80..<0x94))
    #expect(t.outbound.sequenceNumber == 0 && t.outbound.lifetime == nil)
  }

  @Test func defaults() throws {
    let c = try Self.parsed(#"{"listen": ["[::]:4500"]}"#)
    #expect(c.listen == [Endpoint(address: .v6(0, 0), port: 4500)])
    #expect(c.tun.name == "espd0" && c.tun.mtu == 1400 && c.tun.addresses.isEmpty)
    #expect(c.natKeepaliveSeconds == 20 && c.ikePunt == nil && c.metrics == nil)
    #expect(c.control == "/run/espd/control.sock" && c.tunnels.isEmpty)
    #expect(c.udpReceiveBuffer == 8 << 20 && c.udpSendBuffer == 8 << 20 && c.metricsPerTunnel)
    let set = try Self.parsed(
      #"{"listen": ["[::]:4500"], "udp_receive_buffer": 65536, "udp_send_buffer": 1048576, "metrics_per_tunnel": false}"#
    )
    #expect(set.udpReceiveBuffer == 65536 && set.udpSendBuffer == 1 << 20 && !set.metricsPerTunnel)
    let t = try #require(try Self.parsed(ConfigFixture.config()).tunnels.first)
    #expect(t.mode == .tunnel && t.peer == nil)
    #expect(t.inbound[0].replayWindow == 1024 && !t.inbound[0].esn && t.inbound[0].replaySequence == 0)
  }

  @Test func emptyTunnelsAndNullsAreValid() throws {
    #expect(try Self.parsed(ConfigFixture.config(tunnels: [])).tunnels.isEmpty)
    let c = try Self.parsed(
      ConfigFixture.config(
        #""metrics": null, "ike": null, "tun": {"name": null}"#,
        tunnels: [ConfigFixture.tunnel(#""peer": null, "remote_ts": ["10.1.0.0/16"], "mode": null"#)]))
    #expect(c.metrics == nil && c.ikePunt == nil && c.tun.name == "espd0" && c.tunnels[0].peer == nil)
  }

  @Test func valuesInAllTheirForms() throws {
    let inbound = ConfigFixture.sa(
      spi: "3248533505", alg: "rfc4106(gcm(aes))", key: ConfigFixture.hex(36),
      #""esn": true, "replay_seq": "0xFFFFFFFFFFFFFFFF", "replay_window": 0"#)
    let outbound = ConfigFixture.sa(
      spi: #""a1b2c3""#, alg: "cbc(aes)", key: ConfigFixture.hex(32),
      #""auth_key": "\#(ConfigFixture.hmacKey)", "seq": 4294967295, "lifetime": {"bytes_soft": 1, "bytes_hard": 1, "seconds_hard": 3600}"#
    )
    let c = try Self.parsed(
      ConfigFixture.config(
        #"""
        "tun": {"name": "tun-x.1", "mtu": 1280, "addresses": ["2001:db8::1/64", "10.0.0.1"]},
        "ike": {"punt": "unix:/run/ike.sock"}, "nat_keepalive_seconds": 0, "control": "ctl.sock"
        """#, listen: #"["[2001:db8::1]:1", "192.0.2.1:65535"]"#,
        tunnels: [
          ConfigFixture.tunnel(
            #""peer": "[2001:db8::7]:4500", "local": "2001:db8::1", "remote_ts": ["2001:db8:1::/48", "0.0.0.0/0"]"#,
            inbound: [inbound], outbound: outbound)
        ]))
    #expect(c.listen.map(\.description) == ["[2001:db8::1]:1", "192.0.2.1:65535"])
    #expect(c.tun.addresses.map(\.description) == ["2001:db8::1/64", "10.0.0.1/32"])
    #expect(c.ikePunt == .unix("/run/ike.sock") && c.natKeepaliveSeconds == 0 && c.control == "ctl.sock")
    #expect(c.ikeListen.isEmpty && c.ikePuntLocal == nil)
    let t = c.tunnels[0]
    #expect(t.remoteTS.map(\.description) == ["2001:db8:1::/48", "0.0.0.0/0"])
    #expect(t.peer?.description == "[2001:db8::7]:4500" && t.local == IPAddress("2001:db8::1"))
    #expect(t.inbound[0].spi == 0xc1a0_b001 && t.inbound[0].algorithm == .aes256gcm16 && t.inbound[0].esn)
    #expect(t.inbound[0].replaySequence == .max && t.inbound[0].replayWindow == 0)
    #expect(t.outbound.spi == 0xa1_b2c3 && t.outbound.algorithm == .aes256sha256)
    #expect(t.outbound.authKey == Array(0x40..<0x60) && t.outbound.sequenceNumber == 0xFFFF_FFFF)
    var lifetime = Lifetime()
    lifetime.bytesSoft = 1
    lifetime.bytesHard = 1
    lifetime.secondsHard = 3600
    #expect(t.outbound.lifetime == lifetime)
  }

  /// What Windows and macOS clients negotiate, by strongSwan keyword and by `ip xfrm` name: with
  /// `cbc(aes)` the auth_key's length (20, 32, 48, 64) tells the HMAC, the key's the AES size.
  @Test func hmacTransformsByKeywordAndIPXfrmName() throws {
    let cases: [(alg: String, key: Int, authKey: Int, expected: ESPAlgorithm)] = [
      ("aes128-sha1", 16, 20, .aes128sha1), ("aes256-sha1", 32, 20, .aes256sha1),
      ("aes128-sha384", 16, 48, .aes128sha384), ("aes256-sha384", 32, 48, .aes256sha384),
      ("aes256-sha512", 32, 64, .aes256sha512), ("cbc(aes)", 16, 20, .aes128sha1), ("cbc(aes)", 32, 20, .aes256sha1),
      ("cbc(aes)", 16, 32, .aes128sha256), ("cbc(aes)", 16, 48, .aes128sha384), ("cbc(aes)", 32, 48, .aes256sha384),
      ("cbc(aes)", 32, 64, .aes256sha512), ("cbc(aes)+hmac(sha384)", 32, 48, .aes256sha384),
    ]
    for c in cases {
      let sa = ConfigFixture.sa(
        alg: c.alg, key: ConfigFixture.hex(c.key), #""auth_key": "\#(ConfigFixture.hex(c.authKey, from: 0x80))""#)
      let config = try Self.parsed(ConfigFixture.config(tunnels: [ConfigFixture.tunnel(inbound: [sa])]))
      let parsed = config.tunnels[0].inbound[0]
      #expect(parsed.algorithm == c.expected, "\(c.alg) with a \(c.authKey)-byte auth_key")
      #expect(parsed.key.count == c.key && parsed.authKey == (0x80..<(0x80 + c.authKey)).map { UInt8($0) })
    }
  }

  /// The line from INTERFACE.md, in full.
  @Test func keyLengthLineFromInterface() {
    let json = ConfigFixture.second(inbound: [ConfigFixture.sa(spi: #""0xb0b00001""#, key: ConfigFixture.hex(16))])
    #expect(
      Self.problems(json) == [
        "tunnels[1].inbound[0].key: expected 20 bytes (16-byte key + 4-byte salt) for aes128gcm16, got 16"
      ])
  }

  @Test(arguments: globalCases) func globalRules(_ c: ConfigProblemCase) {
    #expect(Self.problems(c.json) == [c.line])
  }

  @Test(arguments: tunnelCases) func tunnelRules(_ c: ConfigProblemCase) {
    #expect(Self.problems(c.json) == [c.line])
  }

  @Test(arguments: saCases) func saRules(_ c: ConfigProblemCase) {
    #expect(Self.problems(c.json) == [c.line])
  }

  @Test(arguments: crossCases) func crossTunnelRules(_ c: ConfigProblemCase) {
    #expect(Self.problems(c.json) == [c.line])
  }

  @Test func everyProblemIsReported() {
    let json = ConfigFixture.config(
      #""tun": {"mtu": 10, "nmae": "x"}, "transport_alias_pool": "10.9.0.1/24""#,
      tunnels: [
        ConfigFixture.tunnel(
          #""mode": "transport", "peer": "1.2.3.4""#, inbound: [ConfigFixture.sa(spi: "0", key: ConfigFixture.hex(3))],
          outbound: ConfigFixture.sa(spi: "1", alg: "aes128gcm")),
        ConfigFixture.tunnel(
          name: "alice", #""remote_ts": []"#, inbound: [ConfigFixture.sa(spi: "2")],
          outbound: ConfigFixture.sa(spi: "3")),
        "[]",
      ])
    #expect(
      Self.problems(json) == [
        #"tun.nmae: unknown field (did you mean "name"?)"#,
        "tun.mtu: expected an integer 576-9000, got 10",
        #"transport_alias_pool: expected 10.9.0.0/24 (host bits must be zero), got "10.9.0.1/24""#,
        #"tunnels[0].peer: expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT), got "1.2.3.4""#,
        "tunnels[0].inbound[0].spi: expected a non-zero 32-bit SPI (hex string or integer), got 0",
        "tunnels[0].inbound[0].key: expected 20 bytes (16-byte key + 4-byte salt) for aes128gcm16, got 3",
        "tunnels[0].outbound.alg: expected one of aes128gcm16, aes192gcm16, aes256gcm16, chacha20poly1305, "
          + "aes128-sha1, aes256-sha1, aes128-sha256, aes256-sha256, aes128-sha384, aes256-sha384, aes256-sha512, "
          + #"null-sha256 or an ip xfrm name, got "aes128gcm" (did you mean "aes128gcm16"?)"#,
        "tunnels[1].remote_ts: expected at least one prefix in tunnel mode, got an empty array",
        "tunnels[2]: expected a tunnel object, got an empty array",
        #"tunnels[1].name: expected a name no other tunnel has, got "alice" (also tunnels[0].name)"#,
      ])
  }

  @Test func syntaxErrorIsOneProblem() {
    #expect(
      Self.problems("{\n  \"listen\": [\"0.0.0.0:4500\",]\n}") == [
        "line 2, column 29: expected a value after ',', got ']' (trailing commas are not allowed)"
      ])
    #expect(
      Self.problems("") == [
        "line 1, column 1: expected a value (object, array, string, number, true, false or null), got end of input"
      ])
    #expect(Self.problems("[]") == ["config: expected a JSON object, got an empty array"])
    #expect(
      ConfigParser.parse(bytes: [0x7B, 0xFF]).failureLines == [
        "line 1, column 2: expected a string key, got invalid UTF-8 byte 0xFF"
      ])
  }

  @Test func limitsParseAndBind() throws {
    let defaults = try Self.parsed(ConfigFixture.config())
    #expect(defaults.limits == Limits())
    let set = try Self.parsed(
      ConfigFixture.config(
        #""limits": {"tunnels": 5, "sas": 10, "inbound_sas_per_tunnel": 2, "control_connections": 3, "ike_queue_bytes": 65536, "ike_per_second": 100}"#
      ))
    #expect(set.limits.tunnels == 5 && set.limits.sas == 10 && set.limits.inboundSAsPerTunnel == 2)
    #expect(set.limits.controlConnections == 3 && set.limits.ikeQueueBytes == 65536 && set.limits.ikePerSecond == 100)
    #expect(
      Self.problems(ConfigFixture.config(#""limits": {"tunnels": 0}"#)) == [
        "limits.tunnels: expected an integer 1-10000000, got 0"
      ])
    #expect(
      Self.problems(ConfigFixture.config(#""limits": {"tunels": 3}"#)).first?.hasPrefix("limits.tunels: unknown")
        == true)
    let pair = [
      ConfigFixture.tunnel(),
      ConfigFixture.tunnel(
        name: "bob", #""remote_ts": ["10.2.0.0/16"]"#, inbound: [ConfigFixture.sa(spi: #""0xb0b00001""#)],
        outbound: ConfigFixture.sa(spi: #""0xb0b00002""#)),
    ]
    #expect(
      Self.problems(ConfigFixture.config(#""limits": {"tunnels": 1}"#, tunnels: pair)) == [
        "tunnels: 2 tunnels, more than limits.tunnels allows (1)"
      ])
    #expect(
      Self.problems(ConfigFixture.config(#""limits": {"sas": 3}"#, tunnels: pair)) == [
        "tunnels: 4 SAs in all, more than limits.sas allows (3)"
      ])
    #expect(
      try Self.parsed(ConfigFixture.config(#""limits": {"tunnels": 2, "sas": 4}"#, tunnels: pair)).tunnels.count == 2)
    let two = ConfigFixture.tunnel(inbound: [ConfigFixture.sa(), ConfigFixture.sa(spi: #""0xc1a0b002""#)])
    #expect(
      Self.problems(ConfigFixture.config(#""limits": {"inbound_sas_per_tunnel": 1}"#, tunnels: [two])) == [
        "tunnels[0].inbound: 2 SAs, more than limits.inbound_sas_per_tunnel allows (1)"
      ])
  }

  @Test func problemsNeverQuoteKeys() {
    let secret = "deadbeefcafe" + ConfigFixture.hex(7)
    let json = ConfigFixture.config(tunnels: [
      ConfigFixture.tunnel(
        inbound: [ConfigFixture.sa(key: secret)],
        outbound: ConfigFixture.sa(
          spi: "7", alg: "aes128-sha256", key: "0x" + secret + "zz", #""auth_key": "\#(secret)0""#))
    ])
    let lines = Self.problems(json)
    #expect(lines.count == 3)
    for l in lines { #expect(!l.contains("deadbeef"), "\(l)") }
  }
}

extension Result where Failure == ConfigErrors {
  fileprivate var failureLines: [String] {
    if case .failure(let e) = self { return e.problems }
    return []
  }
}

// MARK: - One rule, one line

private func root(_ fields: String) -> String { ConfigFixture.config(fields) }
private func withTunnel(_ fields: String) -> String { ConfigFixture.config(tunnels: [ConfigFixture.tunnel(fields)]) }
private func withInbound(_ sa: String) -> String {
  ConfigFixture.config(tunnels: [ConfigFixture.tunnel(inbound: [sa])])
}
private func withOutbound(_ sa: String) -> String {
  ConfigFixture.config(tunnels: [ConfigFixture.tunnel(outbound: sa)])
}
private let endpointSyntax = "ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)"
private let listenExpected = "listen: expected an array of at least one \(endpointSyntax)"
private let rootFieldList =
  "listen, tun, nat_keepalive_seconds, ike, control, metrics, transport_alias_pool, tunnels, limits, udp_receive_buffer, udp_send_buffer, metrics_per_tunnel"
private let spiExpected = "expected a non-zero 32-bit SPI (hex string or integer)"
private let tunName = "expected an interface name of 1-15 bytes without '/', ':' or whitespace"
private let nameExpected = "expected a name of 1-64 letters, digits, '.', '_' or '-'"
private let seqExpected = "expected a sequence number (integer or hex string, 64-bit with esn)"
private let puntExpected = "ike.punt: expected udp:\(endpointSyntax) or unix:PATH"
private let hmac = ConfigFixture.hmacKey

private let globalCases: [ConfigProblemCase] = [
  .init(#"{"listen": ["0.0.0.0:4500"], "tunels": []}"#, #"tunels: unknown field (did you mean "tunnels"?)"#),
  .init(#"{"listen": ["0.0.0.0:4500"], "Control": "x"}"#, #"Control: unknown field (did you mean "control"?)"#),
  .init(#"{"listen": ["0.0.0.0:4500"], "bogus": 1}"#, "bogus: unknown field (expected one of: \(rootFieldList))"),
  .init(
    #"{"listen": ["0.0.0.0:4500"], "a b\n": 1}"#,
    #"config["a b\n"]: unknown field (expected one of: "# + rootFieldList + ")"),
  .init("{}", "\(listenExpected), got nothing"),
  .init(#"{"listen": null}"#, "\(listenExpected), got nothing"),
  .init(#"{"listen": []}"#, "\(listenExpected), got an empty array"),
  .init(#"{"listen": "0.0.0.0:4500"}"#, #"\#(listenExpected), got "0.0.0.0:4500""#),
  .init(#"{"listen": ["0.0.0.0"]}"#, #"listen[0]: expected \#(endpointSyntax), got "0.0.0.0""#),
  .init(#"{"listen": ["::1:4500"]}"#, #"listen[0]: expected \#(endpointSyntax), got "::1:4500""#),
  .init(#"{"listen": [4500]}"#, #"listen[0]: expected \#(endpointSyntax), got 4500"#),
  .init(#"{"listen": ["0.0.0.0:0"]}"#, #"listen[0]: expected a port 1-65535 in \#(endpointSyntax), got "0.0.0.0:0""#),
  .init(#"{"listen": ["[::]:65536"]}"#, #"listen[0]: expected a port 1-65535 in \#(endpointSyntax), got "[::]:65536""#),
  .init(
    #"{"listen": ["0.0.0.0:+45"]}"#, #"listen[0]: expected a port 1-65535 in \#(endpointSyntax), got "0.0.0.0:+45""#),
  .init(
    #"{"listen": ["010.0.0.1:4500"]}"#,
    #"listen[0]: expected an IP address in \#(endpointSyntax), got "010.0.0.1:4500""#),
  .init(
    #"{"listen": ["[1.2.3.4]:4500"]}"#,
    #"listen[0]: expected an IP address in \#(endpointSyntax), got "[1.2.3.4]:4500""#),
  .init(
    #"{"listen": ["[::1%lo]:4500"]}"#, #"listen[0]: expected an IP address in \#(endpointSyntax), got "[::1%lo]:4500""#),
  .init(
    #"{"listen": ["0.0.0.0:4500", "0.0.0.0:4500"]}"#,
    "listen[1]: expected each endpoint once, got 0.0.0.0:4500 again (also listen[0])"),
  .init(root(#""tun": "espd0""#), #"tun: expected an object with name, mtu and addresses, got "espd0""#),
  .init(root(#""tun": {"name": "a-name-of-16-chr"}"#), #"tun.name: \#(tunName), got "a-name-of-16-chr""#),
  .init(root(#""tun": {"name": "a/b"}"#), #"tun.name: \#(tunName), got "a/b""#),
  .init(root(#""tun": {"name": "a b"}"#), #"tun.name: \#(tunName), got "a b""#),
  .init(root(#""tun": {"name": ""}"#), #"tun.name: \#(tunName), got """#),
  .init(root(#""tun": {"adresses": []}"#), #"tun.adresses: unknown field (did you mean "addresses"?)"#),
  .init(root(#""tun": {"mtu": 575}"#), "tun.mtu: expected an integer 576-9000, got 575"),
  .init(root(#""tun": {"mtu": 9001}"#), "tun.mtu: expected an integer 576-9000, got 9001"),
  .init(root(#""tun": {"mtu": 1400.5}"#), "tun.mtu: expected an integer 576-9000, got 1400.5"),
  .init(root(#""tun": {"mtu": "1400"}"#), #"tun.mtu: expected an integer 576-9000, got "1400""#),
  .init(
    root(#""tun": {"mtu": 1279, "addresses": ["2001:db8::1/64"]}"#),
    "tun.mtu: expected at least 1280 with an IPv6 address (RFC 8200 §5), got 1279"),
  .init(
    root(#""tun": {"addresses": ["10.0.0.1/33"]}"#),
    #"tun.addresses[0]: expected an address ADDRESS/LENGTH with a length 0-32, got "10.0.0.1/33""#),
  .init(
    root(#""tun": {"addresses": ["10.0.0.1/24", "10.0.0.1/16"]}"#),
    "tun.addresses[1]: expected each address once, got 10.0.0.1 again (also addresses[0])"),
  .init(
    root(#""nat_keepalive_seconds": 86401"#), "nat_keepalive_seconds: expected seconds 0-86400 (0 disables), got 86401"),
  .init(root(#""nat_keepalive_seconds": -1"#), "nat_keepalive_seconds: expected seconds 0-86400 (0 disables), got -1"),
  .init(root(#""udp_receive_buffer": 1000"#), "udp_receive_buffer: expected bytes 65536-1073741824, got 1000"),
  .init(root(#""udp_send_buffer": 2147483648"#), "udp_send_buffer: expected bytes 65536-1073741824, got 2147483648"),
  .init(root(#""metrics_per_tunnel": "no""#), "metrics_per_tunnel: expected true or false, got a string"),
  .init(root(#""ike": {"punt": "tcp:127.0.0.1:4501"}"#), #"\#(puntExpected), got "tcp:127.0.0.1:4501""#),
  .init(root(#""ike": {"punt": "udp:localhost:4501"}"#), #"\#(puntExpected), got "udp:localhost:4501""#),
  .init(root(#""ike": {"punt": "unix:"}"#), #"ike.punt: expected unix:PATH with a path of 1-107 bytes, got "unix:""#),
  .init(
    root(#""ike": {"punt": "udp:0.0.0.0:4501"}"#),
    #"ike.punt: expected a unicast address in udp:\#(endpointSyntax) or unix:PATH, got "udp:0.0.0.0:4501""#),
  .init(
    root(#""ike": {"punt": "udp:127.0.0.1:4500"}"#),
    #"ike.punt: expected an endpoint that is not a listen socket, got "udp:127.0.0.1:4500" (listen 0.0.0.0:4500)"#),
  .init(root(#""ike": {"pnut": "udp:127.0.0.1:4501"}"#), #"ike.pnut: unknown field (did you mean "punt"?)"#),
  .init(
    root(#""ike": {"punt": "unix:/run/ike.sock", "listen": ["0.0.0.0:4500"]}"#),
    "ike.listen[0]: expected an endpoint no listen socket has, got 0.0.0.0:4500 (listen 0.0.0.0:4500)"),
  .init(
    root(#""ike": {"punt": "unix:/run/ike.sock", "listen": ["192.0.2.1:500", "192.0.2.1:500"]}"#),
    "ike.listen[1]: expected each endpoint once, got 192.0.2.1:500 again"),
  .init(
    root(#""ike": {"listen": ["0.0.0.0:500"]}"#),
    "ike.punt: expected the IKE daemon's address (punt_local and listen need it), got nothing"),
  .init(
    root(#""ike": {"punt": "unix:/run/ike.sock", "punt_local": "unix:/run/ike.sock"}"#),
    #"ike.punt_local: expected a path other than punt's, got "unix:/run/ike.sock""#),
  .init(
    root(#""ike": {"punt": "unix:/run/ike.sock", "punt_local": "udp:127.0.0.1:4600"}"#),
    #"ike.punt_local: expected the same kind as punt (unix: or udp:), got "udp:127.0.0.1:4600""#),
  .init(
    root(#""ike": {"punt": "unix:/run/ike.sock", "punt_local": "unix:ctl.sock"}, "control": "ctl.sock""#),
    #"ike.punt_local: expected a path other than control's, got "unix:ctl.sock""#),
  .init(
    root(#""ike": {"punt": "udp:127.0.0.1:500", "listen": ["0.0.0.0:500"]}"#),
    #"ike.punt: expected an endpoint that is not a listen socket, got "udp:127.0.0.1:500" (listen 0.0.0.0:500)"#),
  .init(root(#""control": """#), #"control: expected a Unix socket path of 1-107 bytes, got """#),
  .init(
    root(#""control": "\#(String(repeating: "a", count: 108))""#),
    "control: expected a Unix socket path of 1-107 bytes, got \"\(String(repeating: "a", count: 48))…\""),
  .init(root(#""metrics": "127.0.0.1""#), #"metrics: expected \#(endpointSyntax), got "127.0.0.1""#),
  .init(
    root(#""transport_alias_pool": "198.51.100.130/25""#),
    #"transport_alias_pool: expected 198.51.100.128/25 (host bits must be zero), got "198.51.100.130/25""#),
  .init(
    root(#""transport_alias_pool": "2001:db8::1/64""#),
    #"transport_alias_pool: expected 2001:db8::/64 (host bits must be zero), got "2001:db8::1/64""#),
  .init(#"{"listen": ["0.0.0.0:4500"], "tunnels": {}}"#, "tunnels: expected an array of tunnel objects, got an object"),
]

private let tunnelCases: [ConfigProblemCase] = [
  .init(ConfigFixture.config(tunnels: [#""alice""#]), #"tunnels[0]: expected a tunnel object, got "alice""#),
  .init(
    ConfigFixture.config(tunnels: [
      #"{"remote_ts": ["10.1.0.0/16"], "inbound": [\#(ConfigFixture.sa())], "outbound": \#(ConfigFixture.sa(spi: "5"))}"#
    ]),
    "tunnels[0].name: \(nameExpected), got nothing"),
  .init(ConfigFixture.config(tunnels: [ConfigFixture.tunnel(name: "")]), #"tunnels[0].name: \#(nameExpected), got """#),
  .init(
    ConfigFixture.config(tunnels: [ConfigFixture.tunnel(name: "a b")]), #"tunnels[0].name: \#(nameExpected), got "a b""#
  ),
  .init(
    ConfigFixture.config(tunnels: [ConfigFixture.tunnel(name: String(repeating: "x", count: 65))]),
    "tunnels[0].name: \(nameExpected), got \"\(String(repeating: "x", count: 48))…\""),
  .init(
    withTunnel(#""remote_ts": ["10.1.0.0/16"], "peerr": "1.2.3.4:1""#),
    #"tunnels[0].peerr: unknown field (did you mean "peer"?)"#),
  .init(
    withTunnel(#""remote_ts": ["10.1.0.0/16"], "mode": "tunel""#),
    #"tunnels[0].mode: expected "tunnel" or "transport", got "tunel" (did you mean "tunnel"?)"#),
  .init(
    withTunnel(#""remote_ts": ["10.1.0.0/16"], "mode": 1"#),
    #"tunnels[0].mode: expected "tunnel" or "transport", got 1"#),
  .init(
    withTunnel(#""remote_ts": ["10.1.0.0/16"], "peer": "0.0.0.0:4500""#),
    #"tunnels[0].peer: expected a unicast address in \#(endpointSyntax), got "0.0.0.0:4500""#),
  .init(
    withTunnel(#""remote_ts": ["10.1.2.3/16"]"#),
    #"tunnels[0].remote_ts[0]: expected 10.1.0.0/16 (host bits must be zero), got "10.1.2.3/16""#),
  .init(
    withTunnel(#""remote_ts": ["2001:db8:ff::1/32"]"#),
    #"tunnels[0].remote_ts[0]: expected 2001:db8::/32 (host bits must be zero), got "2001:db8:ff::1/32""#),
  .init(
    withTunnel(#""remote_ts": ["10.0.0.0/33"]"#),
    #"tunnels[0].remote_ts[0]: expected a prefix ADDRESS/LENGTH with a length 0-32, got "10.0.0.0/33""#),
  .init(
    withTunnel(#""remote_ts": ["10.0.0.0/"]"#),
    #"tunnels[0].remote_ts[0]: expected a prefix ADDRESS/LENGTH with a length 0-32, got "10.0.0.0/""#),
  .init(
    withTunnel(#""remote_ts": ["bogus"]"#), #"tunnels[0].remote_ts[0]: expected a prefix ADDRESS/LENGTH, got "bogus""#),
  .init(
    withTunnel(#""remote_ts": "10.1.0.0/16""#),
    #"tunnels[0].remote_ts: expected an array of prefixes ADDRESS/LENGTH, got "10.1.0.0/16""#),
  .init(
    withTunnel(#""remote_ts": ["10.1.0.0/16", "10.1.0.0/16"]"#),
    "tunnels[0].remote_ts[1]: expected each prefix once, got 10.1.0.0/16 again (also tunnels[0].remote_ts[0])"),
  .init(withTunnel(""), "tunnels[0].remote_ts: expected at least one prefix in tunnel mode, got nothing"),
  .init(
    withTunnel(#""remote_ts": []"#),
    "tunnels[0].remote_ts: expected at least one prefix in tunnel mode, got an empty array"),
  .init(
    withTunnel(#""remote_ts": ["10.1.0.0/16"], "alias": "10.9.0.1""#),
    #"tunnels[0].alias: expected no alias in tunnel mode (alias is for transport tunnels), got "10.9.0.1""#),
  .init(
    withTunnel(#""mode": "transport""#),
    "tunnels[0].alias: expected an address for a transport tunnel (or a global transport_alias_pool), got nothing"),
  .init(
    withTunnel(#""mode": "transport", "alias": "10.9.0""#),
    #"tunnels[0].alias: expected an IPv4 or IPv6 address, got "10.9.0""#),
  .init(withTunnel(#""mode": "transport", "alias": "::""#), #"tunnels[0].alias: expected a unicast address, got "::""#),
  .init(
    withTunnel(#""remote_ts": ["10.1.0.0/16"], "peer": "192.0.2.9:4500", "local": "2001:db8::1""#),
    "tunnels[0].local: expected an IPv4 address like peer 192.0.2.9:4500, got 2001:db8::1"),
  .init(
    ConfigFixture.config(tunnels: [#"{"name": "a", "remote_ts": ["10.1.0.0/16"], "outbound": \#(ConfigFixture.sa())}"#]
    ),
    "tunnels[0].inbound: expected a non-empty array of SA objects, got nothing"),
  .init(
    ConfigFixture.config(tunnels: [ConfigFixture.tunnel(inbound: [])]),
    "tunnels[0].inbound: expected a non-empty array of SA objects, got an empty array"),
  .init(
    ConfigFixture.config(tunnels: [
      #"{"name": "a", "remote_ts": ["10.1.0.0/16"], "inbound": \#(ConfigFixture.sa()), "outbound": \#(ConfigFixture.sa())}"#
    ]), "tunnels[0].inbound: expected a non-empty array of SA objects, got an object"),
  .init(
    ConfigFixture.config(tunnels: [ConfigFixture.tunnel(inbound: ["7"])]),
    "tunnels[0].inbound[0]: expected an SA object, got 7"),
  .init(
    ConfigFixture.config(tunnels: [#"{"name": "a", "remote_ts": ["10.1.0.0/16"], "inbound": [\#(ConfigFixture.sa())]}"#]
    ),
    "tunnels[0].outbound: expected an SA object, got nothing"),
  .init(
    ConfigFixture.config(tunnels: [ConfigFixture.tunnel(outbound: "[]")]),
    "tunnels[0].outbound: expected an SA object, got an empty array"),
]

private let saCases: [ConfigProblemCase] = [
  .init(withInbound(ConfigFixture.sa(spi: "0")), "tunnels[0].inbound[0].spi: \(spiExpected), got 0"),
  .init(withInbound(ConfigFixture.sa(spi: #""0x0""#)), #"tunnels[0].inbound[0].spi: \#(spiExpected), got "0x0""#),
  .init(withInbound(ConfigFixture.sa(spi: "4294967296")), "tunnels[0].inbound[0].spi: \(spiExpected), got 4294967296"),
  .init(
    withInbound(ConfigFixture.sa(spi: #""0x100000000""#)),
    #"tunnels[0].inbound[0].spi: \#(spiExpected), got "0x100000000""#),
  .init(withInbound(ConfigFixture.sa(spi: "-1")), "tunnels[0].inbound[0].spi: \(spiExpected), got -1"),
  .init(withInbound(ConfigFixture.sa(spi: "1.5")), "tunnels[0].inbound[0].spi: \(spiExpected), got 1.5"),
  .init(withInbound(ConfigFixture.sa(spi: #""0xzz""#)), #"tunnels[0].inbound[0].spi: \#(spiExpected), got "0xzz""#),
  .init(withInbound(ConfigFixture.sa(spi: #""""#)), #"tunnels[0].inbound[0].spi: \#(spiExpected), got """#),
  .init(withInbound(ConfigFixture.sa(spi: "true")), "tunnels[0].inbound[0].spi: \(spiExpected), got true"),
  .init(
    withInbound(#"{"alg": "aes128gcm16", "key": "\#(ConfigFixture.gcm128Key)"}"#),
    "tunnels[0].inbound[0].spi: \(spiExpected), got nothing"),
  .init(
    withInbound(ConfigFixture.sa(alg: "aes-gcm")),
    #"tunnels[0].inbound[0].alg: expected one of aes128gcm16, aes192gcm16, aes256gcm16, chacha20poly1305, aes128-sha1, aes256-sha1, aes128-sha256, aes256-sha256, aes128-sha384, aes256-sha384, aes256-sha512, null-sha256 or an ip xfrm name, got "aes-gcm""#
  ),
  .init(
    withInbound(#"{"spi": 9, "key": "\#(ConfigFixture.gcm128Key)"}"#),
    "tunnels[0].inbound[0].alg: expected one of aes128gcm16, aes192gcm16, aes256gcm16, chacha20poly1305, aes128-sha1, aes256-sha1, aes128-sha256, aes256-sha256, aes128-sha384, aes256-sha384, aes256-sha512, null-sha256 or an ip xfrm name, got nothing"
  ),
  .init(
    withInbound(ConfigFixture.sa(alg: "aes192gcm16")),
    "tunnels[0].inbound[0].key: expected 28 bytes (24-byte key + 4-byte salt) for aes192gcm16, got 20"),
  .init(
    withInbound(ConfigFixture.sa(alg: "aes256gcm16", key: nil)),
    "tunnels[0].inbound[0].key: expected 36 bytes (32-byte key + 4-byte salt) for aes256gcm16, got nothing"),
  .init(
    withInbound(ConfigFixture.sa(alg: "chacha20poly1305", key: ConfigFixture.hex(32))),
    "tunnels[0].inbound[0].key: expected 36 bytes (32-byte key + 4-byte salt) for chacha20poly1305, got 32"),
  .init(
    withInbound(ConfigFixture.sa(alg: "rfc7539esp(chacha20,poly1305)", key: ConfigFixture.hex(32))),
    "tunnels[0].inbound[0].key: expected 36 bytes (32-byte key + 4-byte salt) for chacha20poly1305, got 32"),
  .init(
    withInbound(ConfigFixture.sa(alg: "aes128-sha256", key: ConfigFixture.hex(20), #""auth_key": "\#(hmac)""#)),
    "tunnels[0].inbound[0].key: expected 16 bytes (AES-128 key) for aes128-sha256, got 20"),
  .init(
    withInbound(ConfigFixture.sa(alg: "aes256-sha256", key: ConfigFixture.hex(32))),
    "tunnels[0].inbound[0].auth_key: expected 32 bytes (HMAC-SHA-256 key) for aes256-sha256, got nothing"),
  .init(
    withInbound(
      ConfigFixture.sa(alg: "aes256-sha256", key: ConfigFixture.hex(32), #""auth_key": "\#(ConfigFixture.hex(20))""#)),
    "tunnels[0].inbound[0].auth_key: expected 32 bytes (HMAC-SHA-256 key) for aes256-sha256, got 20"),
  .init(
    withInbound(ConfigFixture.sa(alg: "aes128-sha1", key: ConfigFixture.hex(16), #""auth_key": "\#(hmac)""#)),
    "tunnels[0].inbound[0].auth_key: expected 20 bytes (HMAC-SHA-1 key) for aes128-sha1, got 32"),
  .init(
    withInbound(
      ConfigFixture.sa(alg: "aes256-sha1", key: ConfigFixture.hex(16), #""auth_key": "\#(ConfigFixture.hex(20))""#)),
    "tunnels[0].inbound[0].key: expected 32 bytes (AES-256 key) for aes256-sha1, got 16"),
  .init(
    withInbound(ConfigFixture.sa(alg: "aes128-sha384", key: ConfigFixture.hex(16))),
    "tunnels[0].inbound[0].auth_key: expected 48 bytes (HMAC-SHA-384 key) for aes128-sha384, got nothing"),
  .init(
    withInbound(
      ConfigFixture.sa(alg: "aes256-sha384", key: ConfigFixture.hex(32), #""auth_key": "\#(ConfigFixture.hex(64))""#)),
    "tunnels[0].inbound[0].auth_key: expected 48 bytes (HMAC-SHA-384 key) for aes256-sha384, got 64"),
  .init(
    withInbound(
      ConfigFixture.sa(alg: "aes256-sha512", key: ConfigFixture.hex(32), #""auth_key": "\#(ConfigFixture.hex(48))""#)),
    "tunnels[0].inbound[0].auth_key: expected 64 bytes (HMAC-SHA-512 key) for aes256-sha512, got 48"),
  // `cbc(aes)` tells the HMAC by the auth_key's length; other lengths still mean HMAC-SHA-256.
  .init(
    withInbound(
      ConfigFixture.sa(alg: "cbc(aes)", key: ConfigFixture.hex(16), #""auth_key": "\#(ConfigFixture.hex(64))""#)),
    "tunnels[0].inbound[0].key: expected 32 bytes (AES-256 key) for aes256-sha512, got 16"),
  .init(
    withInbound(
      ConfigFixture.sa(alg: "cbc(aes)", key: ConfigFixture.hex(32), #""auth_key": "\#(ConfigFixture.hex(40))""#)),
    "tunnels[0].inbound[0].auth_key: expected 32 bytes (HMAC-SHA-256 key) for aes256-sha256, got 40"),
  .init(
    withInbound(ConfigFixture.sa(alg: "cbc(aes)+hmac(sha1)", key: ConfigFixture.hex(32), #""auth_key": "\#(hmac)""#)),
    "tunnels[0].inbound[0].auth_key: expected 20 bytes (HMAC-SHA-1 key) for aes256-sha1, got 32"),
  .init(
    withInbound(ConfigFixture.sa(alg: "null-sha256", key: ConfigFixture.hex(16), #""auth_key": "\#(hmac)""#)),
    "tunnels[0].inbound[0].key: expected no key for null-sha256 (no encryption), got 16 bytes"),
  .init(
    withInbound(ConfigFixture.sa(#""auth_key": "\#(hmac)""#)),
    "tunnels[0].inbound[0].auth_key: expected no auth_key for aes128gcm16 (AEAD: the cipher computes the ICV), got 32 bytes"
  ),
  .init(
    withInbound(ConfigFixture.sa(key: "abc")), "tunnels[0].inbound[0].key: expected an even number of hex digits, got 3"
  ),
  .init(
    withInbound(ConfigFixture.sa(key: "0x12zz")),
    "tunnels[0].inbound[0].key: expected hex digits (with or without 0x), got a non-hex character at position 5"),
  .init(
    withInbound(#"{"spi": 9, "alg": "aes128gcm16", "key": 1234}"#),
    "tunnels[0].inbound[0].key: expected a hex string, got a number"),
  .init(
    withInbound(ConfigFixture.sa(#""esn": "yes""#)), #"tunnels[0].inbound[0].esn: expected true or false, got "yes""#),
  .init(
    withInbound(ConfigFixture.sa(#""replay_window": 65537"#)),
    "tunnels[0].inbound[0].replay_window: expected packets 0-65536 (0 disables anti-replay), got 65537"),
  .init(
    withInbound(ConfigFixture.sa(#""replay_window": -1"#)),
    "tunnels[0].inbound[0].replay_window: expected packets 0-65536 (0 disables anti-replay), got -1"),
  .init(
    withInbound(ConfigFixture.sa(#""replay-window": 64"#)),
    #"tunnels[0].inbound[0].replay-window: unknown field (did you mean "replay_window"?)"#),
  .init(
    withInbound(ConfigFixture.sa(#""seq": 1"#)),
    #"tunnels[0].inbound[0].seq: not allowed on an inbound SA (did you mean "replay_seq"? seq is the outbound counter)"#
  ),
  .init(
    withOutbound(ConfigFixture.sa(spi: "7", #""replay_seq": 1"#)),
    #"tunnels[0].outbound.replay_seq: not allowed on an outbound SA (did you mean "seq"? replay_seq is inbound state)"#),
  .init(
    withOutbound(ConfigFixture.sa(spi: "7", #""seq": 4294967296"#)),
    "tunnels[0].outbound.seq: expected at most 0xffffffff without esn (32-bit sequence numbers), got 4294967296"),
  .init(
    withInbound(ConfigFixture.sa(#""replay_seq": "0x100000000""#)),
    #"tunnels[0].inbound[0].replay_seq: expected at most 0xffffffff without esn (32-bit sequence numbers), got "0x100000000""#
  ),
  .init(
    withOutbound(ConfigFixture.sa(spi: "7", #""esn": true, "seq": 18446744073709551616"#)),
    "tunnels[0].outbound.seq: \(seqExpected), got 18446744073709551616"),
  .init(
    withOutbound(ConfigFixture.sa(spi: "7", #""esn": true, "seq": "0x1ffffffffffffffff""#)),
    #"tunnels[0].outbound.seq: \#(seqExpected), got "0x1ffffffffffffffff""#),
  .init(withOutbound(ConfigFixture.sa(spi: "7", #""seq": -1"#)), "tunnels[0].outbound.seq: \(seqExpected), got -1"),
  .init(
    withOutbound(ConfigFixture.sa(spi: "7", #""esn": 1, "seq": 4294967296"#)),
    "tunnels[0].outbound.esn: expected true or false, got 1"),
  .init(
    withInbound(ConfigFixture.sa(#""lifetime": 5"#)),
    "tunnels[0].inbound[0].lifetime: expected an object of lifetime limits, got 5"),
  .init(
    withInbound(ConfigFixture.sa(#""lifetime": {"byte_soft": 5}"#)),
    #"tunnels[0].inbound[0].lifetime.byte_soft: unknown field (did you mean "bytes_soft"?)"#),
  .init(
    withInbound(ConfigFixture.sa(#""lifetime": {"packets_hard": -1}"#)),
    "tunnels[0].inbound[0].lifetime.packets_hard: expected a non-negative integer, got -1"),
  .init(
    withInbound(ConfigFixture.sa(#""lifetime": {"seconds_soft": 3600, "seconds_hard": 60}"#)),
    "tunnels[0].inbound[0].lifetime.seconds_soft: expected at most seconds_hard (60), got 3600"),
  .init(
    withInbound(ConfigFixture.sa(#""lifetime": {"seconds_hard": 18446744074}"#)),
    "tunnels[0].inbound[0].lifetime.seconds_hard: expected an integer 0-18446744073, got 18446744074"),
]

private let transportTun = #""tun": {"addresses": ["10.9.0.1/24"]}"#

private let crossCases: [ConfigProblemCase] = [
  .init(
    ConfigFixture.config(tunnels: [
      ConfigFixture.tunnel(),
      ConfigFixture.tunnel(
        name: "alice", #""remote_ts": ["10.2.0.0/16"]"#, inbound: [ConfigFixture.sa(spi: "1")],
        outbound: ConfigFixture.sa(spi: "2")),
    ]), #"tunnels[1].name: expected a name no other tunnel has, got "alice" (also tunnels[0].name)"#),
  .init(
    ConfigFixture.second(inbound: [ConfigFixture.sa()]),
    "tunnels[1].inbound[0].spi: expected an SPI no other inbound SA has, got 0xc1a0b001 (also tunnels[0].inbound[0].spi)"
  ),
  .init(
    ConfigFixture.config(tunnels: [
      ConfigFixture.tunnel(inbound: [ConfigFixture.sa(), ConfigFixture.sa(spi: "3248533505")])
    ]),
    "tunnels[0].inbound[1].spi: expected an SPI no other inbound SA has, got 0xc1a0b001 (also tunnels[0].inbound[0].spi)"
  ),
  .init(
    ConfigFixture.second(outbound: ConfigFixture.sa(spi: #""a1b2c3""#)),
    "tunnels[1].outbound.spi: expected an SPI no other outbound SA has, got 0x00a1b2c3 (also tunnels[0].outbound.spi)"),
  .init(
    ConfigFixture.second(#""remote_ts": ["10.3.0.0/16", "10.1.0.0/16"]"#),
    "tunnels[1].remote_ts[1]: expected a prefix no other tunnel routes (nested prefixes are fine), got 10.1.0.0/16 (also tunnels[0].remote_ts[0])"
  ),
  .init(
    ConfigFixture.config(transportTun, tunnels: [ConfigFixture.tunnel(#""mode": "transport", "alias": "10.9.0.1""#)]),
    "tunnels[0].alias: expected an address other than the tun's own, got 10.9.0.1"),
  .init(
    ConfigFixture.config(
      transportTun, tunnels: [ConfigFixture.tunnel(#""mode": "transport", "alias": "2001:db8::5""#)]),
    "tunnels[0].alias: expected an IPv6 address in tun.addresses (decrypted packets are addressed to it), got none for alias 2001:db8::5"
  ),
  .init(
    ConfigFixture.config(
      transportTun + #", "transport_alias_pool": "2001:db8::/64""#,
      tunnels: [ConfigFixture.tunnel(#""mode": "transport""#)]),
    "transport_alias_pool: expected an IPv6 address in tun.addresses (decrypted packets are addressed to it), got none for pool 2001:db8::/64"
  ),
  .init(
    ConfigFixture.config(
      transportTun + #", "transport_alias_pool": "10.9.1.0/30""#,
      tunnels: (0..<3).map {
        ConfigFixture.tunnel(
          name: "t\($0)", #""mode": "transport""#, inbound: [ConfigFixture.sa(spi: "\(10 + $0)")],
          outbound: ConfigFixture.sa(spi: "\(20 + $0)"))
      }),
    "tunnels[2].alias: expected a free address in transport_alias_pool 10.9.1.0/30, got none left"),
]

// MARK: - What is allowed, aliases, the control-socket entry points

extension ConfigParserTests {
  @Test func nestedPrefixesSharedAliasesAndBothDirectionsOfAnSPIAreFine() throws {
    let c = try Self.parsed(
      ConfigFixture.config(
        transportTun,
        tunnels: [
          ConfigFixture.tunnel(#""remote_ts": ["10.0.0.0/8", "0.0.0.0/0"]"#),
          ConfigFixture.tunnel(
            name: "b", #""remote_ts": ["10.1.0.0/16"]"#, inbound: [ConfigFixture.sa(spi: #""0x00a1b2c3""#)],
            outbound: ConfigFixture.sa(spi: #""0xc1a0b001""#)),
          ConfigFixture.tunnel(
            name: "c", #""mode": "transport", "alias": "10.9.0.77""#, inbound: [ConfigFixture.sa(spi: "3")],
            outbound: ConfigFixture.sa(spi: "4")),
          ConfigFixture.tunnel(
            name: "d", #""mode": "transport", "alias": "10.9.0.77", "remote_ts": ["10.7.0.0/16"]"#,
            inbound: [ConfigFixture.sa(spi: "5")], outbound: ConfigFixture.sa(spi: "6")),
        ]))
    #expect(c.tunnels.map(\.alias) == [nil, nil, IPAddress("10.9.0.77"), IPAddress("10.9.0.77")])
  }

  private static func transportTunnels(_ aliases: [String?]) -> [String] {
    aliases.enumerated().map { i, alias in
      ConfigFixture.tunnel(
        name: "t\(i)", alias.map { #""mode": "transport", "alias": "\#($0)""# } ?? #""mode": "transport""#,
        inbound: [ConfigFixture.sa(spi: "\(100 + i)")], outbound: ConfigFixture.sa(spi: "\(200 + i)"))
    }
  }

  /// In tunnel order, skipping the network address, the tun's address and explicit aliases.
  @Test func aliasesAreAllocatedFromThePool() throws {
    let c = try Self.parsed(
      ConfigFixture.config(
        #""tun": {"addresses": ["10.9.0.1/24"]}, "transport_alias_pool": "10.9.0.0/29""#,
        tunnels: Self.transportTunnels([nil, "10.9.0.3", nil, nil, nil]) + [
          ConfigFixture.tunnel(
            name: "tm", inbound: [ConfigFixture.sa(spi: "999")], outbound: ConfigFixture.sa(spi: "998"))
        ]))
    #expect(
      c.tunnels.map { $0.alias?.description } == ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6", nil])
    #expect(c.transportAliasPool?.description == "10.9.0.0/29")
    // One more would need the broadcast address 10.9.0.7.
    #expect(
      Self.problems(
        ConfigFixture.config(
          #""tun": {"addresses": ["10.9.0.1/24"]}, "transport_alias_pool": "10.9.0.0/29""#,
          tunnels: Self.transportTunnels([nil, "10.9.0.3", nil, nil, nil, nil])))
        == ["tunnels[5].alias: expected a free address in transport_alias_pool 10.9.0.0/29, got none left"])
  }

  @Test(arguments: [
    ("2001:db8::/126", ["2001:db8::1", "2001:db8::2", "2001:db8::3"]),
    ("2001:db8::/127", ["2001:db8::", "2001:db8::1"]),
    ("2001:db8::/64", ["2001:db8::1", "2001:db8::2", "2001:db8::3"]),
    ("10.9.1.0/31", ["10.9.1.0", "10.9.1.1"]),
    ("10.9.1.7/32", ["10.9.1.7"]),
  ])
  func poolShapes(_ pool: String, _ expected: [String]) throws {
    let tun = #""tun": {"addresses": ["10.9.0.1/24", "2001:db8:1::1/64"]}, "transport_alias_pool": "\#(pool)""#
    let c = try Self.parsed(ConfigFixture.config(tun, tunnels: Self.transportTunnels(expected.map { _ in nil })))
    #expect(c.tunnels.map { $0.alias?.description } == expected)
    guard !pool.hasSuffix("/64") else { return }  // 2^64 - 1 addresses: one more always fits
    let one = Self.problems(
      ConfigFixture.config(tun, tunnels: Self.transportTunnels((0...expected.count).map { _ in nil })))
    #expect(
      one == [
        "tunnels[\(expected.count)].alias: expected a free address in transport_alias_pool \(pool), got none left"
      ])
  }

  /// `add_tunnel`: parse the tunnel alone, append it, then check it against the others.
  @Test func controlSocketEntryPoints() throws {
    var c = try Self.parsed(
      ConfigFixture.config(#""tun": {"addresses": ["10.9.0.1/24"]}, "transport_alias_pool": "10.9.0.0/24""#))
    let json = try JSONValue.parse(
      ConfigFixture.tunnel(
        name: "new", #""mode": "transport""#, inbound: [ConfigFixture.sa()], outbound: ConfigFixture.sa(spi: "77")))
    let tunnel = try ConfigParser.parseTunnel(json, path: "tunnel").get()
    #expect(tunnel.alias == nil)
    c.tunnels.append(tunnel)
    #expect(
      ConfigParser.validate(c).failureLines == [
        "tunnels[1].inbound[0].spi: expected an SPI no other inbound SA has, got 0xc1a0b001 (also tunnels[0].inbound[0].spi)"
      ])
    c.tunnels[1].inbound[0].spi = 0x1234
    let valid = try ConfigParser.validate(c).get()
    #expect(valid.tunnels[1].alias == IPAddress("10.9.0.2"))

    let bad = try JSONValue.parse(
      #"{"spi": "0x01", "alg": "chacha20poly1305", "key": "\#(ConfigFixture.hex(20))", "seq": 1}"#)
    #expect(
      ConfigParser.parseSA(bad, path: "inbound", direction: .inbound).map(\.spi)
        == .failure(
          ConfigErrors(problems: [
            #"inbound.seq: not allowed on an inbound SA (did you mean "replay_seq"? seq is the outbound counter)"#,
            "inbound.key: expected 36 bytes (32-byte key + 4-byte salt) for chacha20poly1305, got 20",
          ])))
    let good = try JSONValue.parse(
      #"{"spi": "0x01", "alg": "chacha20poly1305", "key": "\#(ConfigFixture.hex(36))", "seq": 9}"#)
    let sa = try ConfigParser.parseSA(good, path: "outbound", direction: .outbound).get()
    #expect(sa.spi == 1 && sa.sequenceNumber == 9 && sa.key.count == 36)
    #expect(
      ConfigParser.parseTunnel(.string("x"), path: "tunnel").map(\.name)
        == .failure(ConfigErrors(problems: [#"tunnel: expected a tunnel object, got "x""#])))
  }

  /// Random mutations of a valid file: always a configuration or problems, each one line.
  @Test func mutatedFilesNeverTrap() {
    var rng = JSONFuzzRandom(seed: 0xC0_FF1C)
    let seed = Array(Self.interfaceExample.utf8)
    let alphabet = Array(#"{}[]":,-.0123456789abcdefx/ "#.utf8) + [0x00, 0x0A, 0xC3, 0xFF]
    var outcomes = (valid: 0, invalid: 0)
    for _ in 0..<400 {
      var bytes = seed
      for _ in 0..<(1 + Int(rng.next() % 3)) {
        let i = Int(rng.next() % UInt64(bytes.count))
        switch rng.next() % 3 {
        case 0: bytes[i] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
        case 1: bytes.remove(at: i)
        default: bytes.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: i)
        }
      }
      switch ConfigParser.parse(bytes: bytes) {
      case .success: outcomes.valid += 1
      case .failure(let e):
        outcomes.invalid += 1
        #expect(!e.problems.isEmpty)
        for p in e.problems { #expect(!p.contains("\n")) }
      }
    }
    #expect(outcomes.invalid > 0)
  }
}
