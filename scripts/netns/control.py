#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A controller for espd's control socket (INTERFACE.md "Control socket"), for scripts/control-test.sh.
Speaks the protocol itself (one JSON object per line each way), as an IKE daemon would.

  request SOCK JSON                     one request; prints the answer; exit 1 unless "ok":true
  rekey-loop --a SOCK --b SOCK --tunnel-a NAME --tunnel-b NAME --alg ALG --seconds N [--interval S]
                                        hitless rekeys of both directions, once per interval:
                                        new inbound SAs on both ends, then the outbound SAs on both,
                                        then the old inbound SAs deleted; one JSON summary line
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
    rekeys, worst = 0, 0.0
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        old_a, old_b = current_in_spis(ca, a.tunnel_a), current_in_spis(cb, a.tunnel_b)
        ab, ba = new_sa(a.alg, spis), new_sa(a.alg, spis)   # ab: a -> b, ba: b -> a
        must(ca.call({"op": "rekey", "name": a.tunnel_a, "inbound": ba}), "rekey inbound on a")
        must(cb.call({"op": "rekey", "name": a.tunnel_b, "inbound": ab}), "rekey inbound on b")
        must(ca.call({"op": "rekey", "name": a.tunnel_a, "outbound": ab}), "rekey outbound on a")
        must(cb.call({"op": "rekey", "name": a.tunnel_b, "outbound": ba}), "rekey outbound on b")
        time.sleep(a.interval * 0.4)  # packets sealed under the old SAs are still on their way
        for spi in old_a:
            must(ca.call({"op": "delete_sa", "spi": spi}), "delete_sa on a")
        for spi in old_b:
            must(cb.call({"op": "delete_sa", "spi": spi}), "delete_sa on b")
        rekeys += 1
        worst = max(worst, time.monotonic() - t0 - a.interval * 0.4)
        time.sleep(max(0.0, a.interval - (time.monotonic() - t0)))
    print(json.dumps({"rekeys": rekeys, "worst_round_ms": round(worst * 1000, 1)}))
    return 0


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
    p.set_defaults(f=rekey_loop)
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
