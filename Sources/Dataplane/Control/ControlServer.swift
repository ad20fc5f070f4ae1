// SPDX-License-Identifier: Apache-2.0
// The control thread: serves the control socket (JSON lines) and the metrics endpoint (HTTP), and
// passes the loop's lifetime events to subscribers. One poll(2) loop; nothing here touches packets.
import CLinux
import ESP
import Forwarding
import Logging

#if canImport(Glibc)
  import Glibc
#endif

/// Runs on its own thread between ``start()`` and ``stop()``.
public final class ControlServer: @unchecked Sendable {
  let plane: ControlPlane
  let controlPath: String
  let control: OwnedFD
  let metrics: SharedFD?
  let metricsEndpoint: Endpoint?
  /// Written by ``stop()`` to end the thread's poll.
  let stopEvent: OwnedFD
  private var connections: [Connection] = []
  private var thread: PThread? = nil
  private let owner = geteuid()
  /// This run of espd, random per start: in the `subscribe` answer, so that a controller that
  /// reconnects can tell a restart (every tunnel it added gone) from a broken connection.
  let instance = ControlServer.newInstance()

  /// 16 random hex digits.
  static func newInstance() -> String {
    let h = String(UInt64.random(in: 0...UInt64.max), radix: 16)
    return String(repeating: "0", count: 16 - h.count) + h
  }
  var logger: Logger { plane.logger }

  /// The control-plane counters (control thread only; copied into stats and metrics answers).
  private(set) var counters = ControlCounters()

  /// Opens the control socket and the metrics endpoint.
  init(plane: ControlPlane, controlPath: String, metrics: Endpoint?) throws(SystemError) {
    self.plane = plane
    self.controlPath = controlPath
    // On a throw, the descriptors made so far close with the half-made server.
    stopEvent = try Sys.eventFD()
    control = try Listeners.unix(path: controlPath)
    if let metrics {
      do throws(SystemError) {
        self.metrics = SharedFD(try Listeners.tcp(metrics))
      } catch {
        Sys.unlink(controlPath)
        throw error
      }
    } else {
      self.metrics = nil
    }
    metricsEndpoint = metrics
  }

  deinit {
    connections.removeAll()
    Sys.unlink(controlPath)  // the listeners close after this
  }

  /// Starts the control thread.
  func start() throws(SystemError) {
    thread = try PThread(name: "espd-control") { [self] in self.run() }
  }

  /// Ends the control thread and waits for it.
  func stop() {
    Sys.signal(eventFD: stopEvent.raw)
    thread?.join()
    thread = nil
  }

  // MARK: the loop

  private func run() {
    // The packet loops come first: under a storm of requests on a busy machine the scheduler gives
    // this thread the CPU the workers leave (nice 10 for this thread only; workers keep theirs).
    Sys.setNice(ofThisThread: 10)  // best effort: without it the thread only competes more
    while true {
      var fds = [
        pollfd(fd: stopEvent.raw, events: Int16(POLLIN), revents: 0),
        pollfd(fd: plane.mailbox.controlFD, events: Int16(POLLIN), revents: 0),
        pollfd(fd: control.raw, events: Int16(POLLIN), revents: 0),
        pollfd(fd: metrics?.raw ?? -1, events: Int16(POLLIN), revents: 0),
      ]
      for c in connections {
        fds.append(pollfd(fd: c.fd, events: Int16(POLLIN) | (c.wantsWrite ? Int16(POLLOUT) : 0), revents: 0))
      }
      let polled = connections
      let n = Sys.poll(&fds, timeout: 1000)
      if n < 0 && errno != EINTR { break }
      if fds[0].revents != 0 { break }
      if fds[1].revents != 0 { serviceMailbox() }
      if fds[2].revents != 0 { acceptConnections(on: control.raw, kind: .control) }
      if fds[3].revents != 0, let m = metrics?.raw { acceptConnections(on: m, kind: .metrics) }
      let now = LoopCore.now()
      var served: [Connection] = []
      for (i, c) in polled.enumerated() where fds[4 + i].revents != 0 {
        if fds[4 + i].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
          switch c.kind {
          case .control:
            serveControl(c)
            if !c.closeAfterOutput { served.append(c) }
          case .metrics: serveMetrics(c)
          }
        }
        c.flush()
      }
      awaitNext(served)
      // A metrics client gets 10 seconds to send its request.
      for c in connections where c.kind == .metrics && now &- c.opened > 10_000_000_000 { c.closeAfterOutput = true }
      connections.removeAll { $0.finished(now: now) }
      plane.workers.collectGarbage()
    }
    connections.removeAll()
  }

  /// How long to wait for the next request of a controller just answered (ns).
  static let followUpWait: UInt64 = 100_000

  /// A controller that works one request at a time sends the next one within tens of microseconds
  /// of its answer. Waiting for it here, with non-blocking reads, is cheaper than going back to
  /// poll(2): on a small VM the wake-up of a sleeping thread on the other CPU costs more than the
  /// request. At most ``followUpWait`` per answer; a busy worker takes this thread's CPU anyway
  /// (nice 10).
  private func awaitNext(_ served: [Connection]) {
    guard !served.isEmpty else { return }
    let start = LoopCore.now()
    // Back to poll(2) after at most ``followUpBudget`` in all: other connections, the workers'
    // events and SIGHUP are never kept waiting longer by one busy controller.
    let end = start &+ ControlServer.followUpBudget
    var until = start &+ ControlServer.followUpWait
    while true {
      let now = LoopCore.now()
      guard now < until && now < end else { return }
      for c in served where !c.dead && !c.closeAfterOutput {
        guard c.readAvailable(limit: ControlLimits.maxRequestBytes + 1) > 0 || c.inputClosed else { continue }
        serveControl(c)
        c.flush()
        until = LoopCore.now() &+ ControlServer.followUpWait
      }
    }
  }

  /// The longest time one round may spend answering follow-up requests before it polls again (ns).
  static let followUpBudget: UInt64 = 2_000_000

  private func acceptConnections(on listener: Int32, kind: Connection.Kind) {
    while true {
      guard let fd = Sys.accept(listener) else { return }
      let now = LoopCore.now()
      let c = Connection(fd: fd, kind: kind, now: now)
      let controlLimit = plane.config.limits.controlConnections
      let limit = kind == .control ? controlLimit : ControlLimits.maxMetricsConnections
      if connections.filter({ $0.kind == kind }).count >= limit {
        counters.refusedBusy &+= 1
        if connections.count >= 4 * (controlLimit + ControlLimits.maxMetricsConnections) {
          continue  // a flood: closed at once by deinit
        }
        if kind == .control {
          c.refuse(
            ControlError("too many control connections (at most \(limit): limits.control_connections)").answer, now: now
          )
        } else {
          c.sendRaw(ControlServer.http(503, "too many metrics connections\n"))
          c.closeAfterOutput = true
        }
        connections.append(c)
        continue
      }
      if kind == .control {
        // Mode 0600 keeps other users out already; the credential check also covers a socket file
        // whose mode someone changed, and root's CAP_DAC_OVERRIDE.
        let uid = Sys.peerUID(c.fd)
        if uid != owner {
          counters.refusedNotOwner &+= 1
          let who = uid.map { "\($0)" } ?? "unknown"
          c.refuse(
            ControlError("permission denied: uid \(who) is not the socket's owner (uid \(owner))").answer, now: now)
          logger.warning("control socket: refused a connection from uid \(who)")
          connections.append(c)
          continue
        }
      }
      connections.append(c)
    }
  }

  // MARK: control requests

  private func serveControl(_ c: Connection) {
    c.readAvailable(limit: ControlLimits.maxRequestBytes + 1)
    while var line = c.nextLine() {
      if !line.isEmpty { c.send(answer(line, on: c)) }
      KeyMaterial.wipe(&line)
    }
    if c.input.count > ControlLimits.maxRequestBytes && !c.skippingLine {
      // Answer once, drop the rest of the line, and go on with the next one.
      c.discardInput()
      c.skippingLine = true
      counters.errors &+= 1
      c.send(ControlError("request longer than \(ControlLimits.maxRequestBytes) bytes").answer)
    }
    if c.inputClosed { c.closeAfterOutput = true }
  }

  /// The answer line to one request line.
  private func answer(_ line: [UInt8], on c: Connection) -> String {
    counters.requests &+= 1
    let request: ControlRequest
    switch ControlRequest.parse(line) {
    case .success(let r): request = r
    case .failure(let e):
      counters.errors &+= 1
      return e.answer
    }
    do {
      switch request {
      case .list:
        return plane.snapshot().listJSON
      case .stats(let tunnels):
        return ControlServer.ok([("stats", plane.snapshot(tunnels: tunnels).statsObject(control: counters))])
      case .subscribe:
        c.subscribed = true
        return ControlServer.ok([("subscribed", .bool(true)), ("instance", .string("\(instance)"))])
      case .listNames(let prefix):
        return ControlServer.ok(plane.model.names(prefix: prefix))
      case .querySA(let name, let spi, let direction):
        switch plane.model.query(name: name, spi: spi, direction: direction, now: LoopCore.now()) {
        case .success(let members): return ControlServer.ok(members)
        case .failure(let e):
          counters.errors &+= 1
          return e.answer
        }
      case .addTunnel, .deleteTunnel, .rekey, .deleteSA, .allocSPI, .releaseSPI, .updateTunnel:
        switch plane.change(request) {
        case .success(let members):
          if case .allocSPI = request {
            logger.debug("control: \(ControlServer.describe(request))\(JSONValue.membersText(members))")
          } else if case .releaseSPI = request {
            logger.debug("control: \(ControlServer.describe(request))")
          } else {
            logger.info("control: \(ControlServer.describe(request))")
          }
          return ControlServer.ok(members)
        case .failure(let e):
          counters.errors &+= 1
          if e.isLimit { counters.refusedLimit &+= 1 }
          logger.notice("control: refused \(ControlServer.describe(request)): \(e)")
          return e.answer
        }
      }
    }
  }

  /// An answer that accepts: `{"ok":true,…}` with `members` after `ok`.
  static func ok(_ members: [(key: String, value: JSONValue)]) -> String {
    JSONValue.object([("ok", .bool(true))] + members).jsonText
  }

  /// What a change request does, for the log (SPIs and names only, never keys).
  static func describe(_ r: ControlRequest) -> String {
    switch r {
    case .addTunnel(let t):
      "add_tunnel \(t.name) (inbound \(t.inbound.map { ConfigParser.spiText($0.spi) }.joined(separator: ",")), outbound \(ConfigParser.spiText(t.outbound.spi)))"
    case .deleteTunnel(let name): "delete_tunnel \(name)"
    case .rekey(let name, let i, let o):
      "rekey \(name)" + (i.map { " inbound \(ConfigParser.spiText($0.spi))" } ?? "")
        + (o.map { " outbound \(ConfigParser.spiText($0.spi))" } ?? "")
    case .deleteSA(let spi): "delete_sa \(ConfigParser.spiText(spi))"
    case .allocSPI(let lo, let hi): "alloc_spi \(ConfigParser.spiText(lo))-\(ConfigParser.spiText(hi))"
    case .releaseSPI(let spi): "release_spi \(ConfigParser.spiText(spi))"
    case .updateTunnel(let name, let peer, let local):
      "update_tunnel \(name) peer \(peer)" + (local.map { " local \($0)" } ?? "")
    case .querySA(let name, let spi, let d): "query_sa \(name) \(ConfigParser.spiText(spi)) \(d.rawValue)"
    case .listNames: "list names_only"
    case .list: "list"
    case .stats: "stats"
    case .subscribe: "subscribe"
    }
  }

  // MARK: events and reloads from the loop

  private func serviceMailbox() {
    let (events, reload, printStats, _) = plane.mailbox.take()
    for e in events {
      let what =
        "SA \(ConfigParser.spiText(e.spi)) (\(e.tunnel), \(e.direction.rawValue)): \(e.event.hard ? "hard" : "soft") lifetime reached (\(e.event.reason.name))"
      if e.event.hard { logger.warning("\(what)") } else { logger.info("\(what)") }
      let line = e.json
      for c in connections where c.subscribed {
        c.send(line)
        counters.eventsSent &+= 1
      }
    }
    for e in plane.mailbox.takePeerEvents() {
      logger.info(
        "tunnel \(e.tunnel): peer moved from \(e.previous) to \(e.peer) (authenticated by SA \(ConfigParser.spiText(e.spi)))"
      )
      let line = e.json
      for c in connections where c.subscribed {
        c.send(line)
        counters.eventsSent &+= 1
      }
    }
    if reload { plane.reload() }
    if printStats { plane.printStats() }
  }

  // MARK: metrics

  private func serveMetrics(_ c: Connection) {
    c.readAvailable(limit: 8192)
    guard let end = ControlServer.headEnd(c.input) else {
      if c.input.count >= 8192 || c.inputClosed {
        c.sendRaw(ControlServer.http(400, "bad request\n"))
        c.closeAfterOutput = true
      }
      return
    }
    let head = String(decoding: c.input[0..<end], as: UTF8.self)
    c.discardInput()
    c.closeAfterOutput = true
    let parts = head.split(separator: " ", maxSplits: 2)
    guard parts.count >= 2, parts[0] == "GET" || parts[0] == "HEAD" else {
      c.sendRaw(ControlServer.http(405, "only GET\n"))
      return
    }
    let path = parts[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
    guard path == "/metrics" else {
      c.sendRaw(ControlServer.http(404, "not found; try /metrics\n"))
      return
    }
    counters.metricsScrapes &+= 1
    let body = plane.snapshot(tunnels: plane.metricsPerTunnel).prometheusText(control: counters)
    c.sendRaw(
      ControlServer.http(
        200, parts[0] == "HEAD" ? "" : body, type: "text/plain; version=0.0.4; charset=utf-8", length: body.utf8.count
      ))
  }

  /// The end of an HTTP request head (the index of the blank line), or nil.
  static func headEnd(_ b: [UInt8]) -> Int? {
    guard b.count >= 4 else { return nil }
    for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
    for i in 0...(b.count - 2) where b[i] == 10 && b[i + 1] == 10 { return i }
    return nil
  }

  static func http(_ status: Int, _ body: String, type: String = "text/plain; charset=utf-8", length: Int? = nil)
    -> String
  {
    let reason =
      [200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][status]
      ?? "Error"
    return "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(length ?? body.utf8.count)\r\n"
      + "Connection: close\r\n\r\n\(body)"
  }
}
