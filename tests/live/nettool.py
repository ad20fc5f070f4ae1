#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Network helpers for the live tests, run inside a namespace as a script (no dependency beyond
Python 3); tests/live imports it too.

ping [-c N] [-i S] [-W S] [-s SIZE] [--min K] ADDR    ICMP/ICMPv6 echo over a raw socket
udp-server --port P [--bind A] [--count N] [--timeout S] [--echo]   one JSON line per datagram
udp-client --to A --port P --payload TEXT [--count N] [--timeout S] [--no-echo] [--sport P]
ike-client --to A [--port 4500] [--timeout S]          non-ESP marker + IKE header, expects a reply
stats FILE KEY                                          a counter from espd's last {"stats":...} line
echo-tag --bind A --port P [--proto udp|tcp] [--duration S] [--hello A:P] [--silent]
                                                        echo; replies start "from=ADDR:PORT|"
flow --to A --port P --tag T [--bind A] [--sport P] [--proto udp|tcp] [--count N] [--interval S]
     [--linger S] [--expect-from ADDR[:PORT]]   numbered requests to echo-tag; one JSON summary line
                                                (SIGTERM: stop sending, linger, print the summary)
send-esp --bind A --sport P --to A --port P --hex H [--hex H...] [--seq N] [--flip-last] [--count K]
                                                        datagrams built from captured ESP (forgeries)
"""

import argparse
import json
import os
import select
import socket
import struct
import sys
import time


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fam_of(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def ping(a):
    v6 = ":" in a.addr
    s = socket.socket(
        socket.AF_INET6 if v6 else socket.AF_INET,
        socket.SOCK_RAW,
        socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP,
    )
    if a.source:
        s.bind((a.source, 0))
    ident = os.getpid() & 0xFFFF
    got, rtts = 0, []
    for seq in range(1, a.count + 1):
        payload = (struct.pack("!d", time.time()) + bytes(range(256)) * 64)[: max(a.size, 8)]
        t = 128 if v6 else 8
        hdr = struct.pack("!BBHHH", t, 0, 0, ident, seq)
        if not v6:  # the kernel computes the ICMPv6 checksum itself (RFC 3542 §3.1)
            hdr = struct.pack("!BBHHH", t, 0, csum(hdr + payload), ident, seq)
        t0 = time.monotonic()
        try:
            s.sendto(hdr + payload, (a.addr, 0))
        except OSError as e:
            print(f"seq={seq}: send failed: {e}")
            time.sleep(a.interval)
            continue
        deadline = t0 + a.wait
        ok = False
        while not ok:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                break
            data, src = s.recvfrom(65535)
            if not v6:
                data = data[(data[0] & 15) * 4 :]
            if len(data) < 8:
                continue
            typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[:8])
            if typ == (129 if v6 else 0) and rid == ident and rseq == seq:
                ok = True
                rtt = (time.monotonic() - t0) * 1000
                rtts.append(rtt)
                got += 1
                print(f"{len(data)} bytes from {src[0]}: seq={seq} time={rtt:.2f} ms")
        if not ok:
            print(f"seq={seq}: no reply within {a.wait} s")
        if seq < a.count:
            time.sleep(max(0.0, a.interval - (time.monotonic() - t0)))
    need = a.min if a.min is not None else a.count
    avg = f", avg {sum(rtts) / len(rtts):.2f} ms" if rtts else ""
    print(f"ping {a.addr}: {a.count} sent, {got} received{avg}")
    return 0 if got >= need else 1


def udp_server(a):
    fam = fam_of(a.bind) if a.bind else socket.AF_INET6
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6 and not a.bind:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((a.bind or "::", a.port))
    print(json.dumps({"event": "listening", "port": a.port}), flush=True)
    n, deadline = 0, time.monotonic() + a.timeout
    while n < a.count:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            break
        data, src = s.recvfrom(65535)
        n += 1
        host = src[0][7:] if src[0].startswith("::ffff:") else src[0]
        print(
            json.dumps(
                {
                    "event": "datagram",
                    "from": host,
                    "port": src[1],
                    "len": len(data),
                    "text": data[:64].decode("latin-1"),
                }
            ),
            flush=True,
        )
        if a.echo:
            s.sendto(data, src)
    return 0 if n >= a.count else 1


def udp_client(a):
    s = socket.socket(fam_of(a.to), socket.SOCK_DGRAM)
    if a.sport:
        s.bind(("::" if ":" in a.to else "0.0.0.0", a.sport))
    payload = a.payload.encode()
    echoed = 0
    for i in range(a.count):
        s.sendto(payload, (a.to, a.port))
        if a.no_echo:
            time.sleep(0.05)
            continue
        deadline = time.monotonic() + a.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                print(f"datagram {i + 1}: no echo within {a.timeout} s")
                break
            data, src = s.recvfrom(65535)
            if data == payload:
                echoed += 1
                print(f"datagram {i + 1}: echoed by {src[0]}:{src[1]}")
                break
    if a.no_echo:
        print(f"sent {a.count}")
        return 0
    print(f"udp {a.to}:{a.port}: {a.count} sent, {echoed} echoed")
    return 0 if echoed == a.count else 1


def ike_client(a):
    s = socket.socket(fam_of(a.to), socket.SOCK_DGRAM)
    spi_i = os.urandom(8)
    # RFC 7296 §3.1: SPIi, SPIr (0), next payload (none), version 2.0, IKE_SA_INIT (34), Initiator,
    # message ID 0, length
    ike = spi_i + bytes(8) + struct.pack("!BBBBII", 0, 0x20, 34, 0x08, 0, 28)
    s.sendto(b"\0\0\0\0" + ike, (a.to, a.port))  # RFC 3948 §2.2 non-ESP marker
    if not select.select([s], [], [], a.timeout)[0]:
        print(json.dumps({"ok": False, "error": f"no reply within {a.timeout} s"}))
        return 1
    data, src = s.recvfrom(65535)
    res = {"from": f"{src[0]}:{src[1]}", "len": len(data), "hex": data[:48].hex()}
    problems = []
    if len(data) < 4 + 28:
        problems.append("reply shorter than marker + IKE header")
    else:
        if data[:4] != b"\0\0\0\0":
            problems.append("no non-ESP marker")
        if data[4:12] != spi_i:
            problems.append("SPIi differs")
        if not data[4 + 19] & 0x20:
            problems.append("Response flag not set")
        if data[4 + 18] != 34:
            problems.append("exchange type differs")
    if src[1] != a.port:
        problems.append(f"reply from port {src[1]}, expected {a.port}")
    res.update(ok=not problems, problems=problems)
    print(json.dumps(res))
    return 0 if not problems else 1


def big_buffers(s, n=4 << 20):
    """Socket buffers that hold a burst (espd drains a backlog at once after a pause): a loss must
    be the dataplane's, not this tool's."""
    for force, plain in ((33, socket.SO_RCVBUF), (32, socket.SO_SNDBUF)):  # SO_RCVBUFFORCE, SO_SNDBUFFORCE
        try:
            s.setsockopt(socket.SOL_SOCKET, force, n)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, plain, n)


def echo_tag(a):
    """Echo that names the sender as this host sees it: reply = b"from=ADDR:PORT|" + request
    (UDP: per datagram; TCP: per line). One JSON line per request on stdout."""
    fam = fam_of(a.bind)
    deadline = time.monotonic() + a.duration

    def tag(src):
        return b"from=%s:%d|" % (src[0].encode(), src[1])

    def log(src, data):
        print(
            json.dumps(
                {"event": "request", "from": src[0], "port": src[1], "text": data[:64].decode("latin-1")}
            ),
            flush=True,
        )

    if a.proto == "udp":
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        big_buffers(s)
        s.bind((a.bind, a.port))
        if a.hello:  # speak first from this very socket (so that a peer can learn the flow)
            host, _, port = a.hello.rpartition(":")
            s.sendto(b"hello", (host.strip("[]"), int(port)))
        print(json.dumps({"event": "listening", "port": a.port}), flush=True)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return 0
            if not select.select([s], [], [], left)[0]:
                continue
            data, src = s.recvfrom(65535)
            if not a.silent:
                try:
                    s.sendto(tag(src) + data, src)
                except OSError as e:
                    print(json.dumps({"event": "send-error", "error": str(e)}), flush=True)
            log(src, data)
    import threading

    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.bind, a.port))
    srv.listen(16)
    print(json.dumps({"event": "listening", "port": a.port}), flush=True)

    def serve(conn, src):
        buf = b""
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            while True:
                d = conn.recv(65535)
                if not d:
                    return
                buf += d
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    conn.sendall(tag(src) + line + b"\n")
                    log(src, line)
        except OSError:
            return
        finally:
            conn.close()

    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return 0
        if not select.select([srv], [], [], left)[0]:
            continue
        conn, src = srv.accept()
        print(json.dumps({"event": "connection", "from": src[0], "port": src[1]}), flush=True)
        threading.Thread(target=serve, args=(conn, src), daemon=True).start()


def flow(a):
    """COUNT numbered requests "TAG:SEQ" every INTERVAL to an echo-tag server; prints one JSON line:
    sent, received (own replies), lost, foreign (replies carrying another client's tag), bad_from
    (replies naming a sender other than --expect-from), from (the senders the server named)."""
    tag = a.tag.encode()
    fam = fam_of(a.to)
    any_addr = "::" if fam == socket.AF_INET6 else "0.0.0.0"
    tcp = a.proto == "tcp"
    s = socket.socket(fam, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if not tcp:
        big_buffers(s)
    if a.bind or a.sport:
        s.bind((a.bind or any_addr, a.sport or 0))
    res = {"tag": a.tag, "proto": a.proto, "to": f"{a.to}:{a.port}", "count": a.count}
    if tcp:
        s.settimeout(a.connect_timeout)
        try:
            s.connect((a.to, a.port))
        except OSError as e:
            res.update(error=f"connect: {e}", sent=0, received=0, lost=a.count)
            print(json.dumps(res))
            return 1
        s.setblocking(False)
        res["local"] = "{}:{}".format(*s.getsockname()[:2])
    got, sent_at, foreign, froms = {}, {}, {}, {}
    bad_from = dups = send_errors = malformed = 0
    first_error = None
    buf = b""

    def handle(reply, now):
        nonlocal bad_from, dups, malformed
        if not reply.startswith(b"from=") or b"|" not in reply:
            malformed += 1
            return
        head, payload = reply[5:].split(b"|", 1)
        frm = head.decode("latin-1")
        froms[frm] = froms.get(frm, 0) + 1
        if a.expect_from and a.expect_from not in (frm, frm.rsplit(":", 1)[0]):
            bad_from += 1
        ptag, _, pseq = payload.rpartition(b":")
        if ptag != tag or not pseq.isdigit():
            k = ptag.decode("latin-1")
            foreign[k] = foreign.get(k, 0) + 1
            return
        seq = int(pseq)
        if seq in got:
            dups += 1
        else:
            got[seq] = (now - sent_at.get(seq, now)) * 1000

    import signal

    stop = []  # SIGTERM/SIGINT: stop sending, wait --linger for the replies, print the summary
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    t0 = time.monotonic()
    i, end = 0, None
    while True:
        now = time.monotonic()
        if stop and i < a.count:
            a.count = i
            res.update(count=i, stopped=True)
        if i < a.count and now >= t0 + i * a.interval:
            i += 1
            msg = tag + b":%d" % i
            try:
                if tcp:
                    s.sendall(msg + b"\n")
                else:
                    s.sendto(msg, (a.to, a.port))
                sent_at[i] = now
            except OSError as e:
                send_errors += 1
                first_error = first_error or str(e)
            continue
        if i >= a.count:
            if end is None:
                end = now + a.linger
            if len(got) >= len(sent_at) or now >= end:
                break
            wait = end - now
        else:
            wait = t0 + i * a.interval - now
        try:
            if not select.select([s], [], [], max(0.0, wait))[0]:
                continue
        except InterruptedError:
            continue
        try:
            data = s.recv(65535)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError as e:
            first_error = first_error or f"recv: {e}"
            if tcp:
                break
            continue
        now = time.monotonic()
        if tcp:
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                handle(line, now)
        else:
            handle(data, now)
    lost = sorted(set(sent_at) - set(got))
    rtts = sorted(got.values())
    res.update(
        sent=len(sent_at),
        send_errors=send_errors,
        received=len(got),
        lost=len(lost),
        lost_seqs=lost[:20],
        dups=dups,
        foreign=foreign,
        bad_from=bad_from,
        malformed=malformed,
        **{"from": froms},
        rtt_ms_max=round(rtts[-1], 2) if rtts else None,
        rtt_ms_p50=round(rtts[len(rtts) // 2], 2) if rtts else None,
        seconds=round(time.monotonic() - t0, 2),
    )
    if first_error:
        res["error"] = first_error
    print(json.dumps(res))
    ok = len(sent_at) == a.count and not lost and not foreign and not bad_from and not malformed
    return 0 if ok else 1


def send_esp(a):
    """Datagrams made from captured ESP packets (hex UDP payloads): optionally with the sequence
    number replaced (SEQ, SEQ+1, ...) and/or the last byte (the end of the ICV) flipped."""
    s = socket.socket(fam_of(a.to), socket.SOCK_DGRAM)
    s.bind((a.bind, a.sport))
    n, seq = 0, a.seq
    for h in a.hex:
        for _ in range(a.count):
            p = bytearray(bytes.fromhex(h))
            if len(p) < 8:
                print(json.dumps({"error": "shorter than an ESP header"}))
                return 1
            if seq is not None:
                p[4:8] = struct.pack("!I", seq & 0xFFFFFFFF)
                seq += 1
            if a.flip_last:
                p[-1] ^= 0xFF
            s.sendto(bytes(p), (a.to, a.port))
            n += 1
            time.sleep(0.01)
    print(json.dumps({"sent": n, "from": "{}:{}".format(*s.getsockname()[:2])}))
    return 0


def find(obj, key):
    """espd's counter KEY: stats.KEY, stats.global.KEY, stats.drops.KEY, stats.global.drops.KEY,
    else the shallowest numeric KEY anywhere in the stats object (breadth first)."""
    for path in ((key,), ("global", key), ("total", key), ("drops", key), ("global", "drops", key)):
        o = obj
        for p in path:
            o = o.get(p) if isinstance(o, dict) else None
        if isinstance(o, (int, float)) and not isinstance(o, bool):
            return o, ".".join(("stats",) + path)
    queue = [(obj, "stats")]
    while queue:
        o, where = queue.pop(0)
        if isinstance(o, dict):
            if isinstance(o.get(key), (int, float)) and not isinstance(o.get(key), bool):
                return o[key], f"{where}.{key}"
            queue += [(v, f"{where}.{k}") for k, v in o.items()]
        elif isinstance(o, list):
            queue += [(v, f"{where}[{i}]") for i, v in enumerate(o)]
    return None, None


def stats(a):
    last = None
    try:
        with open(a.file, errors="replace") as f:
            for line in f:
                if line.startswith('{"stats"'):
                    last = line
    except OSError as e:
        print(f"cannot read {a.file}: {e}", file=sys.stderr)
        return 2
    if last is None:
        print(f'no {{"stats":...}} line in {a.file}', file=sys.stderr)
        return 2
    try:
        obj = json.loads(last)["stats"]
    except (ValueError, KeyError, TypeError) as e:
        print(f"bad stats line ({e}): {last[:200]}", file=sys.stderr)
        return 2
    v, where = find(obj, a.key)
    if v is None:
        print(f"no counter {a.key!r} in the stats JSON", file=sys.stderr)
        return 3
    print(int(v) if float(v).is_integer() else v)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ping")
    p.add_argument("addr")
    p.add_argument("-c", "--count", type=int, default=3)
    p.add_argument("-i", "--interval", type=float, default=0.2)
    p.add_argument("-W", "--wait", type=float, default=1.0)
    p.add_argument("-s", "--size", type=int, default=56)
    p.add_argument("-I", "--source")
    p.add_argument("--min", type=int)
    p = sub.add_parser("udp-server")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bind")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--echo", action="store_true")
    p = sub.add_parser("udp-client")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--payload", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=2)
    p.add_argument("--no-echo", action="store_true")
    p.add_argument("--sport", type=int, help="source port")
    p = sub.add_parser("ike-client")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, default=4500)
    p.add_argument("--timeout", type=float, default=3)
    p = sub.add_parser("stats")
    p.add_argument("file")
    p.add_argument("key")
    p = sub.add_parser("echo-tag")
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--hello", help="udp: first send one datagram to ADDR:PORT from the server's socket")
    p.add_argument("--silent", action="store_true", help="udp: log the requests, answer none (a sink)")
    p = sub.add_parser("flow")
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--bind")
    p.add_argument("--sport", type=int)
    p.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument(
        "--linger", type=float, default=1.0, help="seconds to wait for replies after the last send"
    )
    p.add_argument("--connect-timeout", type=float, default=3.0)
    p.add_argument("--expect-from", help="the sender every reply must name (ADDR or ADDR:PORT)")
    p = sub.add_parser("send-esp")
    p.add_argument("--bind", required=True)
    p.add_argument("--sport", type=int, required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, default=4500)
    p.add_argument(
        "--hex", action="append", required=True, help="an ESP packet (UDP payload) in hex; repeatable"
    )
    p.add_argument("--seq", type=int, help="replace the sequence numbers with SEQ, SEQ+1, ...")
    p.add_argument("--flip-last", action="store_true", help="flip every bit of the last byte (the ICV's)")
    p.add_argument("--count", type=int, default=1, help="datagrams per --hex")
    a = ap.parse_args(argv)
    return {
        "ping": ping,
        "udp-server": udp_server,
        "udp-client": udp_client,
        "ike-client": ike_client,
        "stats": stats,
        "echo-tag": echo_tag,
        "flow": flow,
        "send-esp": send_esp,
    }[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
