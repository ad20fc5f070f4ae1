// SPDX-License-Identifier: Apache-2.0
// `bench control`: the JSON text it sends (configuration tunnels, control requests), written straight
// into byte buffers, and the request plans (rekey steps, tunnel churn) built before the timed loops.

/// Appends JSON text to a byte buffer without going through `String`: literals, decimal and hex numbers.
struct ByteWriter {
  var bytes: [UInt8] = []

  /// An empty buffer with room for `capacity` bytes.
  init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

  /// Appends a literal.
  @inline(__always)
  mutating func append(_ s: StaticString) {
    s.withUTF8Buffer { bytes.append(contentsOf: $0) }
  }

  /// Appends the UTF-8 of a string (names, paths: outside the per-tunnel loops).
  mutating func append(_ s: String) { bytes.append(contentsOf: s.utf8) }

  /// Appends a non-negative integer in decimal.
  mutating func appendDecimal(_ n: Int) {
    precondition(n >= 0)
    var digits = 1
    var t = n
    while t >= 10 {
      t /= 10
      digits += 1
    }
    let start = bytes.count
    bytes.append(contentsOf: repeatElement(48, count: digits))
    var v = n
    for i in stride(from: start + digits - 1, through: start, by: -1) {
      bytes[i] = UInt8(48 + v % 10)
      v /= 10
    }
  }

  /// Appends `n` in lowercase hex without leading zeros (an IPv6 group: `0`, `f`, `423f`).
  mutating func appendHex(_ n: UInt32) {
    var shift = 28
    while shift > 0 && (n >> UInt32(shift)) == 0 { shift -= 4 }
    while shift >= 0 {
      bytes.append(ByteWriter.hexDigits[Int((n >> UInt32(shift)) & 0xF)])
      shift -= 4
    }
  }

  /// Appends an SPI as espd prints it: `0x` and eight lowercase hex digits.
  mutating func appendSPI(_ spi: UInt32) {
    append("0x")
    for shift in stride(from: 28, through: 0, by: -4) {
      bytes.append(ByteWriter.hexDigits[Int((spi >> UInt32(shift)) & 0xF)])
    }
  }

  /// ASCII `0`…`9`, `a`…`f`.
  static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}

/// The JSON fragments every `bench control` tunnel and SA is made of.
enum ControlJSON {
  /// The key of every SA: 16-byte AES key + 4-byte salt for aes128gcm16 (any fixed value will do).
  static let key: StaticString = "000102030405060708090a0b0c0d0e0f10111213"

  /// `{"spi":"0x…","alg":"aes128gcm16","key":"…"}`.
  static func appendSA(_ w: inout ByteWriter, spi: UInt32) {
    w.append("{\"spi\":\"")
    w.appendSPI(spi)
    w.append("\",\"alg\":\"aes128gcm16\",\"key\":\"")
    w.append(key)
    w.append("\"}")
  }

  /// A responder tunnel (no peer) in tunnel mode with one inbound SA, one outbound SA and one
  /// /128 inside 2001:db8::/32: `2001:db8:<group3>:<group4>::1/128`. Without `mode` (`modeField`
  /// false) it is still a tunnel-mode tunnel, the default, in 16 bytes less (a million make 262 MB).
  static func appendTunnel(
    _ w: inout ByteWriter, name: StaticString, number: Int, group3: UInt32, group4: UInt32, inbound: UInt32,
    outbound: UInt32, modeField: Bool = true
  ) {
    w.append("{\"name\":\"")
    w.append(name)
    w.appendDecimal(number)
    w.append(modeField ? "\",\"mode\":\"tunnel\",\"remote_ts\":[\"2001:db8:" : "\",\"remote_ts\":[\"2001:db8:")
    w.appendHex(group3)
    w.append(":")
    w.appendHex(group4)
    w.append("::1/128\"],\"inbound\":[")
    appendSA(&w, spi: inbound)
    w.append("],\"outbound\":")
    appendSA(&w, spi: outbound)
    w.append("}")
  }

  /// Configuration tunnel `t<i>` (i from 1: `2001:db8::1`, i = 0, is the TUN's own address).
  static func appendConfigTunnel(_ w: inout ByteWriter, _ i: Int) {
    appendTunnel(
      &w, name: "t", number: i, group3: UInt32(truncatingIfNeeded: i >> 16), group4: UInt32(i & 0xFFFF),
      inbound: configInboundSPI(i), outbound: 0x2000_0000 &+ UInt32(truncatingIfNeeded: i), modeField: false)
  }

  /// The inbound SPI tunnel `t<i>` starts with.
  static func configInboundSPI(_ i: Int) -> UInt32 { 0x1000_0000 &+ UInt32(truncatingIfNeeded: i) }
}

/// Request lines (each ending in a newline) in one contiguous buffer, so that a run of them goes
/// out in one write.
struct RequestLines {
  var bytes = ByteWriter()
  /// The end offset (past the newline) of each line.
  var ends: [Int] = []

  /// How many lines.
  var count: Int { ends.count }

  /// Where line `i` starts.
  @inline(__always)
  func start(_ i: Int) -> Int { i == 0 ? 0 : ends[i - 1] }

  /// Ends the line being written.
  mutating func endLine() {
    bytes.bytes.append(10)
    ends.append(bytes.bytes.count)
  }

  /// `n` copies of one request.
  static func repeated(_ line: String, _ n: Int) -> RequestLines {
    var r = RequestLines()
    for _ in 0..<n {
      r.bytes.append(line)
      r.endLine()
    }
    return r
  }
}

/// Hitless rekeys over tunnels `t1`…`tN`, round-robin: each step adds an inbound SA, switches the
/// outbound SA, then deletes the inbound SA the tunnel had before. Remembers each tunnel's current
/// inbound SPI across batches, assuming espd started with the configuration `bench control config`
/// wrote (nothing else rekeyed it).
struct RekeyPlan {
  /// Tunnels in the configuration (`t1`…`tN`).
  let tunnels: Int
  /// The current inbound SPI of tunnel i + 1, 0 while it is still the configuration's.
  private var inbound: [UInt32]
  private var next = 0
  private var nextInbound: UInt32 = 0x4000_0000
  private var nextOutbound: UInt32 = 0x6000_0000

  /// A plan for `tunnels` tunnels as the configuration has them.
  init(tunnels: Int) {
    self.tunnels = tunnels
    inbound = [UInt32](repeating: 0, count: tunnels)
  }

  /// The request lines of the next `steps` steps (three per step).
  mutating func lines(steps: Int) -> RequestLines {
    var r = RequestLines()
    r.bytes.bytes.reserveCapacity(steps * 330)
    r.ends.reserveCapacity(steps * 3)
    for _ in 0..<steps {
      let i = next + 1
      let old = inbound[next] == 0 ? ControlJSON.configInboundSPI(i) : inbound[next]
      let newIn = nextInbound
      let newOut = nextOutbound
      nextInbound &+= 1
      nextOutbound &+= 1
      inbound[next] = newIn
      next = (next + 1) % tunnels
      r.bytes.append("{\"op\":\"rekey\",\"name\":\"t")
      r.bytes.appendDecimal(i)
      r.bytes.append("\",\"inbound\":")
      ControlJSON.appendSA(&r.bytes, spi: newIn)
      r.bytes.append("}")
      r.endLine()
      r.bytes.append("{\"op\":\"rekey\",\"name\":\"t")
      r.bytes.appendDecimal(i)
      r.bytes.append("\",\"outbound\":")
      ControlJSON.appendSA(&r.bytes, spi: newOut)
      r.bytes.append("}")
      r.endLine()
      r.bytes.append("{\"op\":\"delete_sa\",\"spi\":\"")
      r.bytes.appendSPI(old)
      r.bytes.append("\"}")
      r.endLine()
    }
    return r
  }
}

/// `pairs` add_tunnel + delete_tunnel pairs of new tunnels `x1`…: SPIs 0x70000000 + k inbound and
/// 0x78000000 + k outbound, `remote_ts` 2001:db8:ffff:<k>::1/128 (outside every `t<i>`'s).
func churnLines(pairs: Int) -> RequestLines {
  precondition(pairs < 0x1_0000, "k is one IPv6 group")
  var r = RequestLines()
  r.bytes.bytes.reserveCapacity(pairs * 330)
  for k in stride(from: 1, through: pairs, by: 1) {
    r.bytes.append("{\"op\":\"add_tunnel\",\"tunnel\":")
    ControlJSON.appendTunnel(
      &r.bytes, name: "x", number: k, group3: 0xFFFF, group4: UInt32(k), inbound: 0x7000_0000 + UInt32(k),
      outbound: 0x7800_0000 + UInt32(k))
    r.bytes.append("}")
    r.endLine()
    r.bytes.append("{\"op\":\"delete_tunnel\",\"name\":\"x")
    r.bytes.appendDecimal(k)
    r.bytes.append("\"}")
    r.endLine()
  }
  return r
}
