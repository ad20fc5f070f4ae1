#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A controller for espd's control socket (INTERFACE.md "Control socket"), for tests/live/test_control.py.
Speaks the protocol itself (one JSON object per line each way), as an IKE daemon would.

  request SOCK JSON                     one request; prints the answer; exit 1 unless "ok":true
  rekey-loop --a SOCK --b SOCK --tunnel-a NAME --tunnel-b NAME --alg ALG --seconds N [--interval S]
             [--delete-delay S] [--delay S]
                                        hitless rekeys of both directions, once per interval (1 s),
                                        the first after --delay: new inbound SAs on both ends, then
                                        the outbound SAs on both, then --delete-delay (0.3 s) later
                                        the previous inbound SAs deleted; one JSON summary line
                                        {"rekeys":N,"worst_round_ms":X,...} (a round's requests only)
  storm --sock SOCK --tunnels N --steps K [--seconds S] [--delay S]
                                        K rekey steps over N extra tunnels s0..s<N-1> (configs.py
                                        extra): rekey inbound, rekey outbound, delete_sa of the old
                                        inbound SA, one request after the other as fast as they are
                                        answered on one connection; stops after S seconds; one JSON
                                        summary line {"steps":done,"steps_per_s":...}
  wait --sock SOCK --seconds S          poll until espd answers {"op":"subscribe"} (it is up)
  wakeups --seconds S                   sleep 1 ms again and again; the worst delay past each 1 ms is
                                        what the scheduler alone adds to any thread's loop gap (on a
                                        busy 2-vCPU machine: milliseconds); one JSON summary line
  churn --sock SOCK --count N [--prefix6 2001:db8:1000::]
                                        add N responder tunnels, then delete them; one JSON summary line
  malformed --sock SOCK --tunnel NAME   bad requests: each must get an error and change nothing
  events --sock SOCK --seconds S        subscribe; print every event line for S seconds
"""
import argparse, json, os, socket, sys, time

KEYLEN = {"aes128gcm16": 20, "aes192gcm16": 28, "aes256gcm16": 36, "chacha20poly1305": 36}


class Control:
    def __init__(self, path: str, timeout: float = 10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def line(self) -> str:
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("espd closed the control connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def raw(self, text: bytes) -> dict:
        self.s.sendall(text)
        return json.loads(self.line())

    def call(self, obj: dict) -> dict:
        return self.raw(json.dumps(obj, separators=(",", ":")).encode() + b"\n")


def new_sa(alg: str, spis: set, lifetime: dict | None = None) -> dict:
    while True:
        spi = int.from_bytes(os.urandom(4), "big")
        if spi > 255 and spi not in spis:
            break
    spis.add(spi)
    sa = {"spi": f"0x{spi:08x}", "alg": alg, "key": os.urandom(KEYLEN[alg]).hex()}
    if lifetime:
        sa["lifetime"] = lifetime
    return sa


def must(answer: dict, what: str) -> None:
    if answer.get("ok") is not True:
        raise SystemExit(f"{what}: {answer}")


def current_in_spis(c: Control, tunnel: str) -> list[str]:
    ans = c.call({"op": "list"})
    must(ans, "list")
    for t in ans["tunnels"]:
        if t["name"] == tunnel:
            return [sa["spi"] for sa in t["inbound"]]
    raise SystemExit(f"no tunnel {tunnel}")


def rekey_loop(a) -> int:
    ca, cb = Control(a.a), Control(a.b)
    spis: set = set()
    # The inbound SAs each end has now; after that the loop knows them itself (no `list` per round:
    # on a gateway with many tunnels that answer is big).
    old_a, old_b = current_in_spis(ca, a.tunnel_a), current_in_spis(cb, a.tunnel_b)
    spis.update(int(x, 16) for x in old_a + old_b)
    rekeys, worst, worst_req, late = 0, 0.0, 0.0, 0.0

    def call(c: Control, obj: dict, what: str) -> None:
        nonlocal worst_req
        t = time.monotonic()
        must(c.call(obj), what)
        worst_req = max(worst_req, time.monotonic() - t)

    start = time.monotonic()
    deadline = start + a.seconds
    due = start + a.delay
    while due < deadline:
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        t0 = time.monotonic()
        late = max(late, t0 - due)
        ab, ba = new_sa(a.alg, spis), new_sa(a.alg, spis)   # ab: a -> b, ba: b -> a
        call(ca, {"op": "rekey", "name": a.tunnel_a, "inbound": ba}, "rekey inbound on a")
        call(cb, {"op": "rekey", "name": a.tunnel_b, "inbound": ab}, "rekey inbound on b")
        call(ca, {"op": "rekey", "name": a.tunnel_a, "outbound": ab}, "rekey outbound on a")
        call(cb, {"op": "rekey", "name": a.tunnel_b, "outbound": ba}, "rekey outbound on b")
        t1 = time.monotonic()
        time.sleep(a.delete_delay)  # packets sealed under the old SAs are still on their way
        t2 = time.monotonic()
        for spi in old_a:
            call(ca, {"op": "delete_sa", "spi": spi}, "delete_sa on a")
        for spi in old_b:
            call(cb, {"op": "delete_sa", "spi": spi}, "delete_sa on b")
        old_a, old_b = [ba["spi"]], [ab["spi"]]
        rekeys += 1
        worst = max(worst, (t1 - t0) + (time.monotonic() - t2))
        due += a.interval
        while due < time.monotonic():   # a round that overran: skip the slots it ate, no burst
            due += a.interval
    print(json.dumps({"rekeys": rekeys, "worst_round_ms": round(worst * 1000, 1),
                      "worst_request_ms": round(worst_req * 1000, 1), "late_ms": round(late * 1000, 1),
                      "seconds": round(time.monotonic() - start, 2)}))
    return 0


def storm(a) -> int:
    """Rekey steps on the extra tunnels of configs.py `extra` (names s<i>, inbound SPI in_base+i),
    pre-encoded, then sent one request after the other over one connection."""
    n, k = a.tunnels, a.steps
    if n < 1 or k < 1:
        raise SystemExit("storm: need --tunnels >= 1 and --steps >= 1")
    alg, klen = "aes128gcm16", KEYLEN["aes128gcm16"]
    current: dict[int, int] = {}
    reqs: list[tuple[str, tuple[bytes, bytes, bytes]]] = []   # (tunnel, its three request lines)
    for j in range(k):
        i = j * n // k if k <= n else j % n   # spread over the whole table
        old = current.get(i, a.in_base + i)
        new_in, new_out = a.new_in_base + j, a.new_out_base + j
        key_in, key_out = os.urandom(klen).hex(), os.urandom(klen).hex()
        name = f"{a.prefix}{i}"
        reqs.append((name, (
            f'{{"op":"rekey","name":"{name}","inbound":{{"spi":"0x{new_in:08x}","alg":"{alg}","key":"{key_in}"}}}}\n'.encode(),
            f'{{"op":"rekey","name":"{name}","outbound":{{"spi":"0x{new_out:08x}","alg":"{alg}","key":"{key_out}"}}}}\n'.encode(),
            f'{{"op":"delete_sa","spi":"0x{old:08x}"}}\n'.encode())))
        current[i] = new_in
    c = Control(a.sock, timeout=max(30.0, a.seconds))
    sock = c.s
    if a.delay > 0:
        time.sleep(a.delay)
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    done, worst = 0, 0.0
    buf = b""
    error = None
    for name, step in reqs:
        if time.monotonic() >= deadline:
            break
        for what, line in zip(("rekey inbound", "rekey outbound", "delete_sa"), step):
            t = time.monotonic()
            sock.sendall(line)
            while b"\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise SystemExit(f"storm: espd closed the connection after {done} steps")
                buf += chunk
            ans, buf = buf.split(b"\n", 1)
            worst = max(worst, time.monotonic() - t)
            if not ans.startswith(b'{"ok":true'):
                error = f"step {done + 1}, {what} of {name}: {ans[:300].decode(errors='replace')}"
                break
        if error:
            break
        done += 1
    secs = time.monotonic() - t0
    cpu = os.times()
    res = {"steps": done, "of": k, "requests": done * 3, "seconds": round(secs, 2),
           "steps_per_s": round(done / secs) if secs > 0 else None, "worst_request_ms": round(worst * 1000, 2),
           "client_cpu_s": round(cpu.user + cpu.system, 1)}
    if error:
        res["error"] = error
    print(json.dumps(res))
    return 1 if error else 0


def wait_up(a) -> int:
    """Polls until espd answers on its control socket (a small request, whatever the table's size)."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < a.seconds:
        try:
            c = Control(a.sock, timeout=2)
            if c.call({"op": "subscribe"}).get("ok") is True:
                print(json.dumps({"up_after_s": round(time.monotonic() - t0, 2)}))
                return 0
        except (OSError, ValueError, ConnectionError) as e:
            last = e
        time.sleep(0.1)
    print(json.dumps({"up": False, "seconds": a.seconds, "last_error": str(last)}))
    return 1


def churn(a) -> int:
    c = Control(a.sock, timeout=30)
    spis: set = set()
    t0 = time.monotonic()
    worst_add = 0.0
    for i in range(a.count):
        t = time.monotonic()
        ans = c.call({"op": "add_tunnel", "tunnel": {
            "name": f"churn{i}", "mode": "tunnel", "remote_ts": [f"{a.prefix6}{i + 1:x}/128"],
            "inbound": [new_sa("aes128gcm16", spis)], "outbound": new_sa("aes128gcm16", spis)}})
        must(ans, f"add_tunnel churn{i}")
        worst_add = max(worst_add, time.monotonic() - t)
    added = time.monotonic() - t0
    ans = c.call({"op": "list"})
    must(ans, "list")
    listed = sum(1 for t in ans["tunnels"] if t["name"].startswith("churn"))
    t1 = time.monotonic()
    for i in range(a.count):
        must(c.call({"op": "delete_tunnel", "name": f"churn{i}"}), f"delete_tunnel churn{i}")
    deleted = time.monotonic() - t1
    ans = c.call({"op": "list"})
    left = sum(1 for t in ans["tunnels"] if t["name"].startswith("churn"))
    print(json.dumps({"added": a.count, "listed": listed, "left": left, "add_s": round(added, 2),
                      "delete_s": round(deleted, 2), "worst_add_ms": round(worst_add * 1000, 1)}))
    return 0 if listed == a.count and left == 0 else 1


def churn_loop(a) -> int:
    """Adds `count` tunnels and deletes them again, round after round, until `seconds` have passed."""
    c = Control(a.sock, timeout=30)
    spis: set = set()
    rounds = added = deleted = 0
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        for i in range(a.count):
            must(c.call({"op": "add_tunnel", "tunnel": {
                "name": f"soak{i}", "mode": "tunnel", "remote_ts": [f"{a.prefix6}{i + 1:x}/128"],
                "inbound": [new_sa("aes128gcm16", spis)], "outbound": new_sa("aes128gcm16", spis)}}),
                 f"add_tunnel soak{i}")
            added += 1
        for i in range(a.count):
            must(c.call({"op": "delete_tunnel", "name": f"soak{i}"}), f"delete_tunnel soak{i}")
            deleted += 1
        rounds += 1
        time.sleep(a.pause)
    print(json.dumps({"rounds": rounds, "added": added, "deleted": deleted}))
    return 0


def malformed(a) -> int:
    c = Control(a.sock)
    spis: set = set()

    def state() -> list:
        ans = c.call({"op": "list"})
        must(ans, "list")
        return [(t["name"], t["mode"], [s["spi"] for s in t["inbound"]], t["outbound"]["spi"]) for t in ans["tunnels"]]

    before = state()
    t = next(x for x in c.call({"op": "list"})["tunnels"] if x["name"] == a.tunnel)
    in_spi = t["inbound"][0]["spi"]
    good_sa = new_sa("aes128gcm16", spis)
    short_key = dict(new_sa("aes128gcm16", spis), key=os.urandom(16).hex())
    cases = [
        ("bad JSON", b'{"op":"list"\n'),
        ("not an object", b'[1,2]\n'),
        ("no op", b'{"name":"x"}\n'),
        ("unknown op", b'{"op":"frobnicate"}\n'),
        ("unknown member", b'{"op":"list","verbose":true}\n'),
        ("wrong key length", json.dumps({"op": "rekey", "name": a.tunnel, "inbound": short_key}).encode() + b"\n"),
        ("duplicate SPI", json.dumps({"op": "rekey", "name": a.tunnel,
                                      "inbound": dict(good_sa, spi=in_spi)}).encode() + b"\n"),
        ("missing tunnel (rekey)", json.dumps({"op": "rekey", "name": "nosuch", "inbound": good_sa}).encode() + b"\n"),
        ("missing tunnel (delete)", b'{"op":"delete_tunnel","name":"nosuch"}\n'),
        ("unknown SPI", b'{"op":"delete_sa","spi":"0x0badf00d"}\n'),
        ("last inbound SA", json.dumps({"op": "delete_sa", "spi": in_spi}).encode() + b"\n"),
        ("existing tunnel", json.dumps({"op": "add_tunnel", "tunnel": {
            "name": a.tunnel, "mode": "tunnel", "remote_ts": ["2001:db8:ffff::/64"],
            "inbound": [new_sa("aes128gcm16", spis)], "outbound": new_sa("aes128gcm16", spis)}}).encode() + b"\n"),
        ("bad alg", json.dumps({"op": "rekey", "name": a.tunnel, "outbound": dict(good_sa, alg="des")}).encode() + b"\n"),
        ("zero SPI", json.dumps({"op": "rekey", "name": a.tunnel, "inbound": dict(good_sa, spi=0)}).encode() + b"\n"),
        ("binary garbage", bytes(range(1, 10)) + b"\xff\xfe\n"),
    ]
    failures = []
    key_hex = short_key["key"]
    for what, line in cases:
        ans = c.raw(line)
        if ans.get("ok") is not False or not isinstance(ans.get("error"), str) or not ans["error"]:
            failures.append(f"{what}: answer {ans}")
        elif key_hex in ans["error"] or good_sa["key"] in ans["error"]:
            failures.append(f"{what}: the error quotes key material")
    after = state()
    if after != before:
        failures.append(f"state changed: {before} -> {after}")
    print(json.dumps({"cases": len(cases), "failures": failures}))
    return 1 if failures else 0


def events(a) -> int:
    c = Control(a.sock, timeout=0.5)
    must(c.call({"op": "subscribe"}), "subscribe")
    print(json.dumps({"subscribed": True}), flush=True)
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        try:
            print(c.line(), flush=True)
        except socket.timeout:
            continue
    return 0


def request(a) -> int:
    ans = Control(a.sock).raw(a.json.encode() + b"\n")
    print(json.dumps(ans))
    return 0 if ans.get("ok") is True else 1


def wakeups(a) -> int:
    t0 = time.monotonic()
    end = t0 + a.seconds
    worst, n, over1 = 0.0, 0, 0
    while True:
        t = time.monotonic()
        if t >= end:
            break
        time.sleep(0.001)
        late = time.monotonic() - t - 0.001
        n += 1
        worst = max(worst, late)
        over1 += late >= 0.001
    print(json.dumps({"wakeups": n, "worst_ms": round(worst * 1000, 2), "late_1ms_or_more": over1}))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("request"); p.add_argument("sock"); p.add_argument("json"); p.set_defaults(f=request)
    p = sub.add_parser("rekey-loop")
    for k in ("--a", "--b", "--tunnel-a", "--tunnel-b"):
        p.add_argument(k, required=True)
    p.add_argument("--alg", default="aes128gcm16", choices=sorted(KEYLEN))
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--delete-delay", type=float, default=0.3, help="seconds from the switch to deleting the old SAs")
    p.add_argument("--delay", type=float, default=0.0, help="seconds before the first rekey")
    p.set_defaults(f=rekey_loop)
    p = sub.add_parser("storm"); p.add_argument("--sock", required=True)
    p.add_argument("--tunnels", type=int, required=True, help="the extra tunnels s0..s<N-1> to rekey")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--seconds", type=float, default=60, help="stop after this long, steps done or not")
    p.add_argument("--delay", type=float, default=0.0, help="seconds between connecting and the first request")
    p.add_argument("--prefix", default="s")
    p.add_argument("--in-base", type=lambda x: int(x, 0), default=0x10000000, help="s<i>'s inbound SPI is IN_BASE+i")
    p.add_argument("--new-in-base", type=lambda x: int(x, 0), default=0x30000000)
    p.add_argument("--new-out-base", type=lambda x: int(x, 0), default=0x40000000)
    p.set_defaults(f=storm)
    p = sub.add_parser("wait"); p.add_argument("--sock", required=True); p.add_argument("--seconds", type=float, default=60)
    p.set_defaults(f=wait_up)
    p = sub.add_parser("wakeups"); p.add_argument("--seconds", type=float, default=15); p.set_defaults(f=wakeups)
    p = sub.add_parser("churn"); p.add_argument("--sock", required=True); p.add_argument("--count", type=int, default=1000)
    p.add_argument("--prefix6", default="2001:db8:1000::"); p.set_defaults(f=churn)
    p = sub.add_parser("churn-loop"); p.add_argument("--sock", required=True); p.add_argument("--count", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60); p.add_argument("--pause", type=float, default=0.5)
    p.add_argument("--prefix6", default="2001:db8:2000::"); p.set_defaults(f=churn_loop)
    p = sub.add_parser("malformed"); p.add_argument("--sock", required=True); p.add_argument("--tunnel", required=True)
    p.set_defaults(f=malformed)
    p = sub.add_parser("events"); p.add_argument("--sock", required=True); p.add_argument("--seconds", type=float, default=5)
    p.set_defaults(f=events)
    a = ap.parse_args()
    return a.f(a)


if __name__ == "__main__":
    sys.exit(main())
