// SPDX-License-Identifier: Apache-2.0
// One SA object: SPI, algorithm, key lengths per transform, ESN, replay window, starting sequence numbers, lifetimes.
import ESP

/// Which way an SA carries traffic; it decides whether `seq` or `replay_seq` is allowed.
public enum SADirection: String, Sendable {
  /// Decapsulates (`inbound`): takes `replay_seq`.
  case inbound
  /// Encapsulates (`outbound`): takes `seq`.
  case outbound
}

extension ConfigParser {
  static let saFields = ["spi", "alg", "key", "auth_key", "esn", "replay_window", "lifetime"]
  static let lifetimeFields = [
    "bytes_soft", "bytes_hard", "packets_soft", "packets_hard", "seconds_soft", "seconds_hard",
  ]
  /// Seconds are turned into nanoseconds by the dataplane; larger values would overflow `UInt64`.
  static let maxLifetimeSeconds: UInt64 = UInt64.max / 1_000_000_000

  /// Parses one SA object and checks it: SPI non-zero and 32-bit, a known `alg`, `key` and
  /// `auth_key` of the lengths the transform takes, `replay_window` within 0...65536, and `seq`
  /// (outbound) or `replay_seq` (inbound) within 32 bits unless `esn` is set.
  /// - Parameters:
  ///   - value: the SA object.
  ///   - path: how problems name it (`tunnels[0].inbound[1]`, or `inbound` in a rekey request).
  ///   - direction: inbound or outbound.
  /// - Returns: the SA, or every problem found in it. Problems never quote key material.
  public static func parseSA(_ value: JSONValue, path: String, direction: SADirection) -> Result<SAConfig, ConfigErrors>
  {
    var problems = Problems()
    let (_, sa) = parseSADraft(value, path: path, direction: direction, &problems)
    guard problems.isEmpty, let sa else { return .failure(ConfigErrors(problems: problems.lines)) }
    return .success(sa)
  }

  /// Parses an SA, returning its SPI even when other fields have problems (for the duplicate checks).
  static func parseSADraft(_ value: JSONValue, path: String, direction: SADirection, _ problems: inout Problems)
    -> (spi: UInt32?, sa: SAConfig?)
  {
    let before = problems.lines.count
    guard let r = FieldReader(value, path: path, what: "an SA object", problems: &problems) else { return (nil, nil) }
    let counter = direction == .inbound ? "replay_seq" : "seq"
    let misplaced =
      direction == .inbound
      ? ["seq": "not allowed on an inbound SA (did you mean \"replay_seq\"? seq is the outbound counter)"]
      : ["replay_seq": "not allowed on an outbound SA (did you mean \"seq\"? replay_seq is inbound state)"]
    r.rejectUnknown(allowed: saFields + [counter], misplaced: misplaced, problems: &problems)

    var spi: UInt32? = nil
    let spiExpected = "a non-zero 32-bit SPI (hex string or integer)"
    if let v = r["spi"], let n = hexOrInteger(v), n != 0, n <= UInt64(UInt32.max) {
      spi = UInt32(n)
    } else {
      problems.add(r.path("spi"), expected: spiExpected, got: describe(r["spi"]))
    }

    // Keys first: the `ip xfrm` names need the key lengths to tell AES key sizes and, for
    // `cbc(aes)`, the HMAC apart.
    var key: [UInt8]? = nil
    if let v = r["key"] { key = hexBytes(v, r.path("key"), &problems) }
    var authKey: [UInt8]? = nil
    if let v = r["auth_key"] { authKey = hexBytes(v, r.path("auth_key"), &problems) }

    var algorithm: ESPAlgorithm? = nil
    let algExpected =
      "one of \(ESPAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")) or an ip xfrm name"
    if let v = r["alg"], case .string(let name) = v {
      algorithm = ESPAlgorithm.named(name, keyLength: key?.count ?? 0, authKeyLength: authKey?.count)
      if algorithm == nil {
        let names = ESPAlgorithm.allCases.map(\.rawValue)
        let hint = Suggestion.closest(to: name, among: names).map { " (did you mean \"\($0)\"?)" } ?? ""
        problems.add(r.path("alg"), expected: algExpected, got: describe(v) + hint)
      }
    } else {
      problems.add(r.path("alg"), expected: algExpected, got: describe(r["alg"]))
    }

    // A key that is not valid hex was reported already; its length is not checked.
    let keyValid = r["key"] == nil || key != nil
    let authKeyValid = r["auth_key"] == nil || authKey != nil
    if let algorithm {
      if keyValid { checkKey(algorithm, key, r.path("key"), &problems) }
      if authKeyValid { checkAuthKey(algorithm, authKey, r.path("auth_key"), &problems) }
    }

    var esn = false
    var esnValid = true
    if let v = r["esn"] {
      if let b = bool(v, r.path("esn"), &problems) { esn = b } else { esnValid = false }
    }

    var window = ESPConstants.defaultReplayWindow
    if let v = r["replay_window"],
      let n = integer(
        v, r.path("replay_window"), in: 0...UInt64(ESPConstants.maxReplayWindow),
        expected: "packets 0-\(ESPConstants.maxReplayWindow) (0 disables anti-replay)", &problems)
    {
      window = Int(n)
    }

    var sequence: UInt64 = 0
    if let v = r[counter] {
      if let n = hexOrInteger(v) {
        if !esn && esnValid && n > ESPConstants.maxSequence32 {
          problems.add(
            r.path(counter), expected: "at most 0xffffffff without esn (32-bit sequence numbers)", got: describe(v))
        } else {
          sequence = n
        }
      } else {
        problems.add(
          r.path(counter), expected: "a sequence number (integer or hex string, 64-bit with esn)", got: describe(v))
      }
    }

    var lifetime: Lifetime? = nil
    if let v = r["lifetime"] { lifetime = parseLifetime(v, r.path("lifetime"), &problems) }

    guard problems.lines.count == before, let spi, let algorithm else { return (spi, nil) }
    let sa = SAConfig(
      spi: spi, algorithm: algorithm, key: key ?? [], authKey: authKey ?? [], esn: esn, replayWindow: window,
      sequenceNumber: direction == .outbound ? sequence : 0, replaySequence: direction == .inbound ? sequence : 0,
      lifetime: lifetime)
    return (spi, sa)
  }

  /// `key` (nil: absent) has the length the transform takes; messages say what the bytes are.
  private static func checkKey(_ algorithm: ESPAlgorithm, _ key: [UInt8]?, _ path: String, _ problems: inout Problems) {
    let name = algorithm.rawValue
    guard algorithm.keyLength > 0 else {
      if let key, !key.isEmpty {
        problems.add(path, expected: "no key for \(name) (no encryption)", got: bytes(key.count))
      }
      return
    }
    guard key?.count != algorithm.keyLength else { return }
    let what =
      algorithm.isAEAD
      ? "\(algorithm.keyLength - ESPConstants.saltLength)-byte key + \(ESPConstants.saltLength)-byte salt"
      : "AES-\(algorithm.keyLength * 8) key"
    problems.add(
      path, expected: "\(algorithm.keyLength) bytes (\(what)) for \(name)", got: key.map { "\($0.count)" } ?? "nothing")
  }

  /// `auth_key` (nil: absent) has the length the transform takes: the HMAC's digest size (20 bytes
  /// for HMAC-SHA-1, 32, 48 or 64 for HMAC-SHA-256/384/512), none for AEAD.
  private static func checkAuthKey(
    _ algorithm: ESPAlgorithm, _ authKey: [UInt8]?, _ path: String, _ problems: inout Problems
  ) {
    let name = algorithm.rawValue
    guard let integrity = algorithm.integrity else {
      if let authKey, !authKey.isEmpty {
        problems.add(
          path, expected: "no auth_key for \(name) (AEAD: the cipher computes the ICV)", got: bytes(authKey.count))
      }
      return
    }
    guard authKey?.count != algorithm.authKeyLength else { return }
    problems.add(
      path, expected: "\(integrity.keyLength) bytes (\(integrity.hmacName) key) for \(name)",
      got: authKey.map { "\($0.count)" } ?? "nothing")
  }

  private static func bytes(_ n: Int) -> String { n == 1 ? "1 byte" : "\(n) bytes" }

  /// `lifetime`: six optional non-negative integers; each soft limit at most its hard limit.
  static func parseLifetime(_ value: JSONValue, _ path: String, _ problems: inout Problems) -> Lifetime? {
    guard let r = FieldReader(value, path: path, what: "an object of lifetime limits", problems: &problems) else {
      return nil
    }
    r.rejectUnknown(allowed: lifetimeFields, problems: &problems)
    var values: [String: UInt64] = [:]
    for f in lifetimeFields {
      guard let v = r[f] else { continue }
      let limit: UInt64 = f.hasPrefix("seconds") ? maxLifetimeSeconds : .max
      if let n = integer(v, r.path(f), in: 0...limit, &problems) { values[f] = n }
    }
    for kind in ["bytes", "packets", "seconds"] {
      if let soft = values[kind + "_soft"], let hard = values[kind + "_hard"], soft > hard {
        problems.add(r.path(kind + "_soft"), expected: "at most \(kind)_hard (\(hard))", got: "\(soft)")
      }
    }
    var l = Lifetime()
    l.bytesSoft = values["bytes_soft"]
    l.bytesHard = values["bytes_hard"]
    l.packetsSoft = values["packets_soft"]
    l.packetsHard = values["packets_hard"]
    l.secondsSoft = values["seconds_soft"]
    l.secondsHard = values["seconds_hard"]
    return l
  }
}
