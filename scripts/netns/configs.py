#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes matching espd configurations (random keys, SPIs paired across both ends) for the netns tests.

    configs.py pair --out DIR [--alg A] [--mode tunnel|transport] [--outer 4|6] [--inner 4,6]
                    [--full-tunnel a|b] [--keepalive N] [--ike-punt SPEC] [--esn] [--seed N]
    configs.py nat  --out DIR [--clients N] [--alg A] [--inner 4[,6]] [--full-tunnel c1,c2]
                    [--keepalive N] [--gw-keepalive N] [--ike-punt SPEC] [--esn] [--seed N]
    configs.py nat  --out DIR --mode transport [--alias distinct|shared] [--clients N] ...
    configs.py rekey DIR --host cN [--port P]   # new SAs for one client (gw.json and cN.json), new port
    configs.py many --out DIR [--tunnels N] [--clients K] [--alg A] [--seed N]
    configs.py extra DIR --host b [--tunnels N]   # N more tunnels (no traffic) in DIR/b.json
    configs.py check DIR --espd PATH      # `espd check --config` on every *.json config in DIR

Writes DIR/<host>.json (one espd config per host: a and b, or gw and c1..cN) and DIR/scenario.json
(addresses, TUN names, aliases and SPIs of every host, for the test scripts; no keys), and prints
the config paths, one per line.

The addresses are those of tests/live/livenet.py (PairTopology, NatTopology; documentation ranges only):

    pair:  a ul0 192.0.2.1/24 2001:db8::1/64   <->   b ul0 192.0.2.2/24 2001:db8::2/64
           inner (TUN) a 198.51.100.1 2001:db8:100::1     b 198.51.100.2 2001:db8:100::2
           transport mode: on a, alias 198.51.100.130 stands for b; on b, 198.51.100.129 for a
    nat:   gw ul0 192.0.2.1/24  <->  nat wan0 192.0.2.2/24 (masquerade) | br0 203.0.113.1/24
           c<i> eth0 203.0.113.(9+i)/24, default via 203.0.113.1
           inner gw 198.51.100.1 2001:db8:100::1, c<i> 198.51.100.(9+i) 2001:db8:100::(9+i, hex)

nat --mode transport (L2TP/IPsec clients behind one NAT; inner IPv4 only):
           every client has the same TUN address 198.51.100.50/32 and the alias 198.51.100.1 for
           the gateway, so every client's inner flows can be identical (udp 1701 -> 1701);
           the gateway's TUN has 198.51.100.1/24 and its tunnel c<i> the alias 198.51.100.(130+i)
           (--alias distinct) or all of them 198.51.100.130 (--alias shared: replies steered by
           the flow table learned from inbound packets)
    many:  the nat plan with N gateway tunnels (tunnel mode, inner IPv6: tunnel k has remote_ts
           2001:db8:1::(k+1)/128), K of them real clients c1..cK spread over the list (first,
           middle, last, ...); every other tunnel has random keys and distinct SPIs and no peer

    extra: appends N tunnels s0..s<N-1> to a host's config (written compact), for control-plane
           load (tests/live/test_control.py storm): tunnel mode, no peer, aes128gcm16, s<i> has remote_ts
           2001:db8:<1000+hi>:<lo>::1/128 (i = hi * 65536 + lo, hex), inbound SPI 0x10000000+i,
           outbound SPI 0x20000000+i; the host's TUN gets 2001:db8:100::<2 or 1>/32 besides its own
           addresses, so every one of those routes lies inside the TUN's own prefix

TUN addresses are host prefixes (/32, /128): every route to the far side comes from espd's own
`remote_ts`/alias routes, so the tests check those too. Each config has its own control socket in
DIR (instances in different namespaces share the file system) and a TUN named espd0 (each in its
own namespace).
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import secrets
import subprocess
import sys

# alg -> (key bytes incl. salt, auth key bytes); INTERFACE.md "alg".
ALGS = {
    "aes128gcm16": (20, 0),
    "aes192gcm16": (28, 0),
    "aes256gcm16": (36, 0),
    "chacha20poly1305": (36, 0),
    "aes128-sha256": (16, 32),
    "aes256-sha256": (32, 32),
    "null-sha256": (0, 32),
    "aes128-sha1": (16, 20),
    "aes256-sha1": (32, 20),
    "aes128-sha384": (16, 48),
    "aes256-sha384": (32, 48),
    "aes256-sha512": (32, 64),
}

PORT = 4500
TUN = "espd0"
MTU = 1400

# Outer ("internet") and inner (tunnel) addresses; keep in step with tests/live/livenet.py.
PAIR_OUTER = {"a": {4: "192.0.2.1", 6: "2001:db8::1"}, "b": {4: "192.0.2.2", 6: "2001:db8::2"}}
PAIR_INNER = {"a": {4: "198.51.100.1", 6: "2001:db8:100::1"}, "b": {4: "198.51.100.2", 6: "2001:db8:100::2"}}
# Transport mode: on host X, the alias that stands for the other host.
PAIR_ALIAS = {"a": {4: "198.51.100.130", 6: "2001:db8:100::130"}, "b": {4: "198.51.100.129", 6: "2001:db8:100::129"}}
NAT_GW_OUTER = "192.0.2.1"
NAT_ROUTER_OUTER = "192.0.2.2"
NAT_GW_INNER = {4: "198.51.100.1", 6: "2001:db8:100::1"}


def nat_client_outer(i: int) -> str:
    return f"203.0.113.{9 + i}"


def nat_client_inner(i: int) -> dict[int, str]:
    return {4: f"198.51.100.{9 + i}", 6: str(ipaddress.IPv6Address(f"2001:db8:100::{9 + i:x}"))}


class Keys:
    """Random (or seeded) key material and unique SPIs."""

    def __init__(self, seed: int | None):
        self.rng = random.Random(seed) if seed is not None else None
        self.spis: set[int] = set()

    def bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n) if self.rng else secrets.token_bytes(n)

    def spi(self) -> int:
        while True:
            # 1..255 are reserved by IANA (RFC 4303 §2.1); keep clear of them.
            v = int.from_bytes(self.bytes(4), "big")
            if v >= 0x1000 and v not in self.spis:
                self.spis.add(v)
                return v

    def sa(self, alg: str, esn: bool) -> dict:
        klen, alen = ALGS[alg]
        sa = {"spi": f"0x{self.spi():08x}", "alg": alg}
        if klen:
            sa["key"] = self.bytes(klen).hex()
        if alen:
            sa["auth_key"] = self.bytes(alen).hex()
        if esn:
            sa["esn"] = True
        return sa


def endpoint(addr: str, port: int = PORT) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def host_prefix(addr: str) -> str:
    return f"{addr}/{128 if ':' in addr else 32}"


def sa_pair(keys: Keys, alg: str, esn: bool) -> tuple[dict, dict]:
    """(SA from X to Y, SA from Y to X): X's outbound is Y's inbound, with the same SPI and keys."""
    return keys.sa(alg, esn), keys.sa(alg, esn)


def inbound(sa: dict) -> dict:
    return dict(sa, replay_window=1024)


def base_config(out: str, name: str, listen: list[str], tun_addrs: list[str], keepalive: int,
                ike_punt: str | None) -> dict:
    cfg = {
        "listen": listen,
        "tun": {"name": TUN, "mtu": MTU, "addresses": tun_addrs},
        "nat_keepalive_seconds": keepalive,
        "control": os.path.join(os.path.abspath(out), f"{name}.control.sock"),
        "tunnels": [],
    }
    if ike_punt:
        cfg["ike"] = {"punt": ike_punt}
    return cfg


def families(spec: str) -> list[int]:
    fams = []
    for x in spec.split(","):
        x = x.strip()
        if x not in ("4", "6"):
            raise SystemExit(f"configs.py: --inner: expected 4, 6 or 4,6, got {spec!r}")
        fams.append(int(x))
    return fams


def full_remote_ts(fams: list[int]) -> list[str]:
    return [{4: "0.0.0.0/0", 6: "::/0"}[f] for f in fams]


def pair(a: argparse.Namespace, keys: Keys) -> tuple[dict, dict]:
    fams = families(a.inner)
    o = a.outer
    ab, ba = sa_pair(keys, a.alg, a.esn)  # ab: a -> b, ba: b -> a
    configs, hosts = {}, {}
    for me, other, out_sa, in_sa in (("a", "b", ab, ba), ("b", "a", ba, ab)):
        cfg = base_config(a.out, me, [endpoint(PAIR_OUTER[me][o])],
                          [host_prefix(PAIR_INNER[me][f]) for f in fams],
                          a.keepalive, a.ike_punt if me == "a" else None)
        t = {"name": other, "mode": a.mode, "peer": endpoint(PAIR_OUTER[other][o])}
        if a.mode == "tunnel":
            t["remote_ts"] = (full_remote_ts(fams) if me in a.full_tunnel
                              else [host_prefix(PAIR_INNER[other][f]) for f in fams])
        else:
            t["alias"] = PAIR_ALIAS[me][fams[0]]
        t["inbound"] = [inbound(in_sa)]
        t["outbound"] = out_sa
        cfg["tunnels"].append(t)
        configs[me] = cfg
        hosts[me] = {
            "config": os.path.join(os.path.abspath(a.out), f"{me}.json"), "tun": TUN,
            "outer": PAIR_OUTER[me][o], "listen": cfg["listen"],
            "inner4": PAIR_INNER[me][4] if 4 in fams else None,
            "inner6": PAIR_INNER[me][6] if 6 in fams else None,
            "alias_of_peer": t.get("alias"), "remote_ts": t.get("remote_ts"),
            "spi_in": in_sa["spi"], "spi_out": out_sa["spi"],
        }
    scenario = {"scenario": "pair", "alg": a.alg, "mode": a.mode, "outer": o, "inner": fams, "port": PORT,
                "hosts": hosts}
    return configs, scenario


def nat(a: argparse.Namespace, keys: Keys) -> tuple[dict, dict]:
    if a.mode == "transport":
        return nat_transport(a, keys)
    fams = families(a.inner)
    gw = base_config(a.out, "gw", [endpoint(NAT_GW_OUTER)], [host_prefix(NAT_GW_INNER[f]) for f in fams],
                     a.gw_keepalive, a.ike_punt)
    configs: dict[str, dict] = {"gw": gw}
    hosts: dict[str, dict] = {}
    gw_tunnels = []
    for i in range(1, a.clients + 1):
        c = f"c{i}"
        up, down = sa_pair(keys, a.alg, a.esn)  # up: client -> gw, down: gw -> client
        inner = nat_client_inner(i)
        # The gateway learns each client's NAT'd endpoint from its first authenticated packet.
        gw["tunnels"].append({"name": c, "mode": "tunnel",
                              "remote_ts": [host_prefix(inner[f]) for f in fams],
                              "inbound": [inbound(up)], "outbound": down})
        gw_tunnels.append({"name": c, "spi_in": up["spi"], "spi_out": down["spi"]})
        cfg = base_config(a.out, c, [endpoint(nat_client_outer(i))], [host_prefix(inner[f]) for f in fams],
                          a.keepalive, None)
        full = c in a.full_tunnel
        cfg["tunnels"].append({"name": "gw", "mode": "tunnel", "peer": endpoint(NAT_GW_OUTER),
                               "remote_ts": full_remote_ts(fams) if full else
                               [host_prefix(NAT_GW_INNER[f]) for f in fams],
                               "inbound": [inbound(down)], "outbound": up})
        configs[c] = cfg
        hosts[c] = {"config": os.path.join(os.path.abspath(a.out), f"{c}.json"), "tun": TUN,
                    "outer": nat_client_outer(i), "listen": cfg["listen"],
                    "inner4": inner[4] if 4 in fams else None, "inner6": inner[6] if 6 in fams else None,
                    "full_tunnel": full, "spi_in": down["spi"], "spi_out": up["spi"]}
    hosts["gw"] = {"config": os.path.join(os.path.abspath(a.out), "gw.json"), "tun": TUN, "outer": NAT_GW_OUTER,
                   "listen": gw["listen"], "inner4": NAT_GW_INNER[4] if 4 in fams else None,
                   "inner6": NAT_GW_INNER[6] if 6 in fams else None, "tunnels": gw_tunnels}
    scenario = {"scenario": "nat", "alg": a.alg, "mode": "tunnel", "outer": 4, "inner": fams, "port": PORT,
                "nat_address": NAT_ROUTER_OUTER, "hosts": hosts}
    return configs, scenario


# nat --mode transport: the L2TP/IPsec plan (see the module docstring).
TRANSPORT_CLIENT_TUN = "198.51.100.50"
TRANSPORT_GW_TUN = "198.51.100.1/24"
TRANSPORT_SHARED_ALIAS = "198.51.100.130"


def transport_gw_alias(i: int, shared: bool) -> str:
    return TRANSPORT_SHARED_ALIAS if shared else f"198.51.100.{130 + i}"


def nat_transport(a: argparse.Namespace, keys: Keys) -> tuple[dict, dict]:
    if families(a.inner) != [4] and a.inner != "4,6":
        raise SystemExit("configs.py: nat --mode transport: inner IPv4 only")
    if a.full_tunnel:
        raise SystemExit("configs.py: nat --mode transport: no --full-tunnel")
    shared = a.alias == "shared"
    gw = base_config(a.out, "gw", [endpoint(NAT_GW_OUTER)], [TRANSPORT_GW_TUN], a.gw_keepalive, a.ike_punt)
    configs: dict[str, dict] = {"gw": gw}
    hosts: dict[str, dict] = {}
    gw_tunnels = []
    gw_inner = NAT_GW_INNER[4]
    for i in range(1, a.clients + 1):
        c = f"c{i}"
        up, down = sa_pair(keys, a.alg, a.esn)  # up: client -> gw, down: gw -> client
        alias = transport_gw_alias(i, shared)
        gw["tunnels"].append({"name": c, "mode": "transport", "alias": alias,
                              "inbound": [inbound(up)], "outbound": down})
        gw_tunnels.append({"name": c, "alias": alias, "spi_in": up["spi"], "spi_out": down["spi"]})
        cfg = base_config(a.out, c, [endpoint(nat_client_outer(i))], [host_prefix(TRANSPORT_CLIENT_TUN)],
                          a.keepalive, None)
        cfg["tunnels"].append({"name": "gw", "mode": "transport", "peer": endpoint(NAT_GW_OUTER),
                               "alias": gw_inner, "inbound": [inbound(down)], "outbound": up})
        configs[c] = cfg
        hosts[c] = {"config": os.path.join(os.path.abspath(a.out), f"{c}.json"), "tun": TUN,
                    "outer": nat_client_outer(i), "listen": cfg["listen"], "inner4": TRANSPORT_CLIENT_TUN,
                    "inner6": None, "alias_of_peer": gw_inner, "alias_on_gw": alias,
                    "spi_in": down["spi"], "spi_out": up["spi"]}
    hosts["gw"] = {"config": os.path.join(os.path.abspath(a.out), "gw.json"), "tun": TUN, "outer": NAT_GW_OUTER,
                   "listen": gw["listen"], "inner4": gw_inner, "inner6": None, "tunnels": gw_tunnels}
    scenario = {"scenario": "nat", "alg": a.alg, "mode": "transport", "alias": a.alias, "outer": 4, "inner": [4],
                "port": PORT, "nat_address": NAT_ROUTER_OUTER, "hosts": hosts}
    return configs, scenario


def write_json_atomic(path: str, obj: dict) -> None:
    """Writes a whole file or nothing (a running espd may re-read it on SIGHUP at any moment)."""
    tmp = f"{path}.tmp{os.getpid()}"
    old = os.umask(0o077)
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        os.umask(old)


def rekey(a: argparse.Namespace) -> int:
    """A client restarts: new SAs for it in gw.json and in its own config (optionally a new listen
    port, hence a new NAT mapping); every other tunnel of gw.json stays byte for byte the same."""
    with open(os.path.join(a.dir, "scenario.json")) as f:
        scenario = json.load(f)
    with open(os.path.join(a.dir, "gw.json")) as f:
        gw = json.load(f)
    cpath = os.path.join(a.dir, f"{a.host}.json")
    with open(cpath) as f:
        client = json.load(f)
    mine = [t for t in gw["tunnels"] if t["name"] == a.host]
    if len(mine) != 1 or len(client["tunnels"]) != 1:
        raise SystemExit(f"configs.py rekey: no single tunnel {a.host!r} in gw.json / {a.host}.json")
    keys = Keys(a.seed)
    for t in gw["tunnels"]:
        for sa in t["inbound"] + [t["outbound"]]:
            keys.spis.add(int(sa["spi"], 16))
    alg = mine[0]["outbound"]["alg"]
    esn = bool(mine[0]["outbound"].get("esn", False))
    up, down = sa_pair(keys, alg, esn)
    mine[0]["inbound"] = [inbound(up)]
    mine[0]["outbound"] = down
    ct = client["tunnels"][0]
    ct["inbound"] = [inbound(down)]
    ct["outbound"] = up
    if a.port:
        client["listen"] = [endpoint(ep.rsplit(":", 1)[0].strip("[]"), a.port) for ep in client["listen"]]
    write_json_atomic(cpath, client)
    write_json_atomic(os.path.join(a.dir, "gw.json"), gw)
    h = scenario["hosts"]
    h[a.host].update(spi_in=down["spi"], spi_out=up["spi"], listen=client["listen"])
    for t in h["gw"]["tunnels"]:
        if t["name"] == a.host:
            t.update(spi_in=up["spi"], spi_out=down["spi"])
    write_json_atomic(os.path.join(a.dir, "scenario.json"), scenario)
    print(cpath)
    print(os.path.join(a.dir, "gw.json"))
    return 0


def many_inner(k: int) -> str:
    """The inner address (remote_ts) of the gateway's tunnel k (0-based): 2001:db8:1::(k+1)."""
    return str(ipaddress.IPv6Address(0x2001_0db8_0001 << 80 | (k + 1)))


def many(a: argparse.Namespace, keys: Keys) -> tuple[dict, dict]:
    n, k = a.tunnels, a.clients
    if not 1 <= k <= n:
        raise SystemExit("configs.py many: need 1 <= --clients <= --tunnels")
    # real clients spread over the list: first, last, then evenly in between
    real = sorted({0, n - 1} | {round(j * (n - 1) / (k - 1)) for j in range(k)} if k > 1 else {n // 2})[:k]
    gw_inner6 = NAT_GW_INNER[6]
    gw = base_config(a.out, "gw", [endpoint(NAT_GW_OUTER)], [host_prefix(NAT_GW_INNER[4]), host_prefix(gw_inner6)],
                     0, None)
    configs: dict[str, dict] = {"gw": gw}
    hosts: dict[str, dict] = {}
    gw_real = []
    for t in range(n):
        up, down = sa_pair(keys, a.alg, False)
        name = f"t{t:05d}"
        if t in real:
            i = real.index(t) + 1
            name = f"c{i}"
            c = name
            inner = many_inner(t)
            cfg = base_config(a.out, c, [endpoint(nat_client_outer(i))], [host_prefix(inner)], 0, None)
            cfg["tunnels"].append({"name": "gw", "mode": "tunnel", "peer": endpoint(NAT_GW_OUTER),
                                   "remote_ts": [host_prefix(gw_inner6)],
                                   "inbound": [inbound(down)], "outbound": up})
            configs[c] = cfg
            hosts[c] = {"config": os.path.join(os.path.abspath(a.out), f"{c}.json"), "tun": TUN,
                        "outer": nat_client_outer(i), "listen": cfg["listen"], "inner4": None, "inner6": inner,
                        "index_on_gw": t, "spi_in": down["spi"], "spi_out": up["spi"]}
            gw_real.append({"name": c, "index": t, "spi_in": up["spi"], "spi_out": down["spi"]})
        gw["tunnels"].append({"name": name, "mode": "tunnel", "remote_ts": [host_prefix(many_inner(t))],
                              "inbound": [inbound(up)], "outbound": down})
    hosts["gw"] = {"config": os.path.join(os.path.abspath(a.out), "gw.json"), "tun": TUN, "outer": NAT_GW_OUTER,
                   "listen": gw["listen"], "inner4": NAT_GW_INNER[4], "inner6": gw_inner6, "tunnels": gw_real,
                   "tunnel_count": n, "silent_example": many_inner(1 if 1 not in real else n // 3)}
    scenario = {"scenario": "many", "alg": a.alg, "mode": "tunnel", "outer": 4, "inner": [6], "port": PORT,
                "nat_address": NAT_ROUTER_OUTER, "tunnels": n, "hosts": hosts}
    return configs, scenario


EXTRA_IN_BASE, EXTRA_OUT_BASE = 0x10000000, 0x20000000


def extra_remote_ts(i: int) -> str:
    """The remote_ts of extra tunnel i: 2001:db8:<1000+hi>:<lo>::1/128, clear of the pair's outer
    (2001:db8::/64) and inner (2001:db8:100::/48) addresses."""
    return f"2001:db8:{0x1000 + (i >> 16):x}:{i & 0xFFFF:x}::1/128"


def extra(a: argparse.Namespace) -> int:
    n = a.tunnels
    if not 1 <= n <= 0x0FFFFFFF:
        raise SystemExit("configs.py extra: --tunnels must be between 1 and 268435455")
    path = os.path.join(a.dir, f"{a.host}.json")
    with open(path) as f:
        cfg = json.load(f)
    taken = {int(sa["spi"], 16) for t in cfg["tunnels"] for sa in t["inbound"] + [t["outbound"]]}
    if any(EXTRA_IN_BASE <= x < EXTRA_IN_BASE + n or EXTRA_OUT_BASE <= x < EXTRA_OUT_BASE + n for x in taken):
        raise SystemExit("configs.py extra: an existing SPI is in the extra tunnels' ranges (run `pair` again)")
    tun6 = f"{PAIR_INNER.get(a.host, {6: '2001:db8:100::1'})[6]}/32"
    if tun6 not in cfg["tun"]["addresses"]:
        cfg["tun"]["addresses"].append(tun6)
    keys = os.urandom(40 * n).hex()   # 20 bytes (16-byte key + 4-byte salt) per SA, two SAs per tunnel
    alg = "aes128gcm16"
    for i in range(n):
        k = keys[80 * i:80 * i + 80]
        cfg["tunnels"].append({
            "name": f"s{i}", "mode": "tunnel", "remote_ts": [extra_remote_ts(i)],
            "inbound": [{"spi": f"0x{EXTRA_IN_BASE + i:08x}", "alg": alg, "key": k[:40]}],
            "outbound": {"spi": f"0x{EXTRA_OUT_BASE + i:08x}", "alg": alg, "key": k[40:]}})
    old = os.umask(0o077)
    try:
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:   # compact: 100,000 tunnels are about 25 MB so
            json.dump(cfg, f, separators=(",", ":"))
            f.write("\n")
        os.replace(tmp, path)
    finally:
        os.umask(old)
    spath = os.path.join(a.dir, "scenario.json")
    with open(spath) as f:
        scenario = json.load(f)
    scenario["hosts"][a.host]["extra"] = {"tunnels": n, "prefix": "s", "in_base": f"0x{EXTRA_IN_BASE:08x}",
                                          "out_base": f"0x{EXTRA_OUT_BASE:08x}", "tun_address": tun6}
    write_json_atomic(spath, scenario)
    print(path)
    return 0


def write(out: str, configs: dict, scenario: dict, compact: bool = False) -> None:
    os.makedirs(out, exist_ok=True)
    old = os.umask(0o077)  # the files hold keys
    try:
        for name, cfg in configs.items():
            path = os.path.join(out, f"{name}.json")
            with open(path, "w") as f:
                if compact:  # espd reads config files up to 4 MiB; 10,000 tunnels fit only without indentation
                    json.dump(cfg, f, separators=(",", ":"))
                else:
                    json.dump(cfg, f, indent=2)
                f.write("\n")
            print(path)
        with open(os.path.join(out, "scenario.json"), "w") as f:
            json.dump(scenario, f, indent=2)
            f.write("\n")
    finally:
        os.umask(old)


def check(a: argparse.Namespace) -> int:
    bad = 0
    names = sorted(n for n in os.listdir(a.dir) if n.endswith(".json") and n != "scenario.json")
    if not names:
        print(f"configs.py check: no configs in {a.dir}", file=sys.stderr)
        return 1
    for n in names:
        path = os.path.join(a.dir, n)
        p = subprocess.run([a.espd, "check", "--config", path], capture_output=True, text=True)
        if p.returncode != 0:
            bad += 1
            print(f"{path}: espd check exit {p.returncode}")
            for line in (p.stdout + p.stderr).strip().splitlines():
                print(f"  {line}")
        elif a.verbose:
            print(f"{path}: ok")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("pair", "nat"):
        p = sub.add_parser(name)
        p.add_argument("--out", required=True, help="directory for the configs (created)")
        p.add_argument("--alg", default="aes128gcm16", choices=sorted(ALGS))
        p.add_argument("--mode", default="tunnel", choices=["tunnel", "transport"])
        p.add_argument("--inner", default="4,6", help="inner families: 4, 6 or 4,6 (default 4,6)")
        p.add_argument("--full-tunnel", default="", help="hosts whose remote_ts is 0.0.0.0/0 (and ::/0)")
        p.add_argument("--keepalive", type=int, default=0,
                       help="nat_keepalive_seconds (pair: both; nat: the clients); default 0 = off")
        p.add_argument("--ike-punt", help="ike.punt (pair: on a; nat: on gw), e.g. udp:127.0.0.1:4501")
        p.add_argument("--esn", action="store_true", help="64-bit extended sequence numbers")
        p.add_argument("--seed", type=int, help="deterministic keys and SPIs (debugging only)")
        if name == "pair":
            p.add_argument("--outer", type=int, default=4, choices=[4, 6], help="outer family")
        else:
            p.add_argument("--clients", type=int, default=2)
            p.add_argument("--gw-keepalive", type=int, default=0, help="the gateway's nat_keepalive_seconds")
            p.add_argument("--alias", default="distinct", choices=["distinct", "shared"],
                           help="--mode transport: one alias per client on the gateway, or one for all")
    m = sub.add_parser("many")
    m.add_argument("--out", required=True, help="directory for the configs (created)")
    m.add_argument("--tunnels", type=int, default=10000)
    m.add_argument("--clients", type=int, default=3)
    m.add_argument("--alg", default="aes128gcm16", choices=sorted(ALGS))
    m.add_argument("--seed", type=int, help="deterministic keys and SPIs (debugging only)")
    r = sub.add_parser("rekey")
    r.add_argument("dir")
    r.add_argument("--host", required=True, help="the client that restarts (c1, c2, ...)")
    r.add_argument("--port", type=int, help="its new listen port (a new NAT mapping)")
    r.add_argument("--seed", type=int, help="deterministic keys and SPIs (debugging only)")
    x = sub.add_parser("extra")
    x.add_argument("dir")
    x.add_argument("--host", default="b", help="whose config gets the tunnels (default b)")
    x.add_argument("--tunnels", type=int, default=100000)
    c = sub.add_parser("check")
    c.add_argument("dir")
    c.add_argument("--espd", required=True)
    c.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.cmd == "check":
        return check(a)
    if a.cmd == "rekey":
        return rekey(a)
    if a.cmd == "extra":
        return extra(a)
    keys = Keys(a.seed)
    if a.cmd == "many":
        configs, scenario = many(a, keys)
        write(a.out, configs, scenario, compact=True)
        return 0
    a.full_tunnel = {x.strip() for x in a.full_tunnel.split(",") if x.strip()}
    configs, scenario = pair(a, keys) if a.cmd == "pair" else nat(a, keys)
    write(a.out, configs, scenario)
    return 0


if __name__ == "__main__":
    sys.exit(main())
