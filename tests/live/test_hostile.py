"""Hostile input, live (was scripts/hostile-test.sh): espd between two network namespaces while an
attacker on the same link floods it (scripts/netns/flood.py), and the resource limits under pressure.
  flood          iperf3 TCP a -> b through the tunnel, alternating three undisturbed runs and three
                 under a flood at b of random datagrams, forged ESP with b's real SPI and replays of
                 a's own captured packets ($FLOOD_PPS, default 10,000 each per second, from another
                 address, at $FLOOD_PORT, default 4500): the tunnel keeps >= 80% of its undisturbed
                 throughput; every datagram of the flood is counted by espd (or by the kernel's UDP
                 buffer-full counter); b's memory stays within 16 MB of where it was; b's peer
                 endpoint never moves to the attacker
  ike-flood      5,000 IKE datagrams/s at a from one address (punt to a Unix socket whose daemon
                 sleeps for 3 s, then reads): while it sleeps the queue stays within the 16 KiB send
                 buffer (ike_punt_dropped); the flood is held to its address's budget
                 (ike_source_limited), so the peer's own IKE, from its address, all reaches the
                 daemon; every IKE datagram is counted once; a ping through the tunnel loses nothing
  limits         limits.tunnels, inbound_sas_per_tunnel and control_connections: extra connections,
                 tunnels and SAs are refused with errors that name the limit and counted
                 (control_refused_busy, control_refused_limit); `espd check` refuses a file past
                 limits.sas, and a limit out of range (exit 2)
The throughput figures mean something with a release build:

    sudo ESPD=.build/release/espd python3 -m pytest -q -rxXs -m hostile tests/live
"""

import copy
import json
import os
import socket
import stat
import time

import pytest

from livecontrol import (
    Checks,
    ctl,
    finished,
    flood_bg,
    jload,
    last_json,
    named,
    new_key,
    stop_espds,
    waited,
)
from liveiperf import iperf_once
from livenet import A_OUT4, B_OUT4
from liveproc import run

pytestmark = pytest.mark.hostile

ATTACKER = "192.0.2.66"
FLOOD_PPS = int(os.environ.get("FLOOD_PPS", "10000"))  # datagrams per second of each kind in flood
FLOOD_PORT = int(
    os.environ.get("FLOOD_PORT", "4500")
)  # (a port espd does not listen on: the flood's own cost)


def bad_total(e):
    """The drops a flood can cause, from espd's last stats line."""
    return sum(
        e.counter(k) or 0 for k in ("unknown_spi", "malformed", "auth_failed", "replayed", "outside_window")
    )


def softnet_drops():
    """The kernel's per-CPU backlog drops, all namespaces (an upper bound for ours)."""
    with open("/proc/net/softnet_stat") as f:
        return sum(int(line.split()[1], 16) for line in f if line.strip())


def tcp_mbps(r):
    try:
        return int(r.result["end"]["sum_received"]["bits_per_second"] / 1e6)
    except (TypeError, KeyError):
        return 0


def median(values):
    return sorted(values)[len(values) // 2]


@named("name", {"flood": "flood"})
def test_flood(net, name):
    c = Checks()
    d = net.configs("pair", "--inner", "4")
    net.pair()
    a, b = net.ns("a"), net.ns("b")
    a.addr("ul0", f"{ATTACKER}/24")
    net.espd("a", d)
    eb = net.espd("b", d)
    b4 = d.hosts["b"]["inner4"]
    spi = d.load("b")["tunnels"][0]["inbound"][0]["spi"]

    def tcp(name, seconds):
        return iperf_once(b, a, b4, seconds, net.procs, net.dir, name)

    r = tcp("warm", 2)
    assert r.ok, f"warm-up: {r.summary}"
    rss0, _ = eb.memory()
    eb.stats()
    bad0, kern0 = bad_total(eb), b.udp_rcvbuf_errors() + softnet_drops()
    sent = errors = 0
    quiet, loud = [], []
    # Medians of three alternated runs: one noisy run on this shared machine does not decide. If
    # they fall short, two more rounds and the median of five decides (the bar stays at 80%).
    pct, rounds, rnd = 0, 3, 1
    while rnd <= rounds:
        r = tcp(f"quiet{rnd}", 8)
        assert r.ok, f"undisturbed run {rnd}: {r.summary}"
        quiet.append(tcp_mbps(r))
        # The flooder sniffs a's ESP to b for up to 3 s (iperf3 starts at once), then floods for 11 s.
        flood = flood_bg(
            net, f"flood{rnd}", "a", "--to", f"{B_OUT4}:{FLOOD_PORT}", "--from", ATTACKER,
            "--seconds", 11, "--random", FLOOD_PPS, "--forge", FLOOD_PPS, "--spi", spi,
            "--replay", FLOOD_PPS, "--sniff", "ul0", "--sniff-dst", f"{B_OUT4}:4500", "--seed", rnd,
        )  # fmt: skip
        r = tcp(f"capture{rnd}", 3)
        assert r.ok, f"run while capturing {rnd}: {r.summary}"
        r = tcp(f"loud{rnd}", 8)
        assert r.ok, f"run under the flood {rnd}: {r.summary}"
        loud.append(tcp_mbps(r))
        rc = finished(flood, 15, "the flooder did not finish")
        assert rc == 0, f"flood.py: {net.tail(f'flood{rnd}.out', 1)} {net.tail(f'flood{rnd}.err', 2)}"
        out = last_json(net.log(f"flood{rnd}.out"))
        sent += sum(out["sent"].values())
        errors += out["send_errors"]
        if rnd == rounds:
            q, lo = median(quiet), median(loud)
            pct = 100 * lo // q if q > 0 else 0
            if pct < 80 and rounds == 3:
                net.info(
                    f"medians of 3 rounds: {pct}% ({' '.join(map(str, loud))} vs "
                    f"{' '.join(map(str, quiet))} Mbit/s); two more rounds"
                )
                rounds = 5
        rnd += 1
    rss1, _ = eb.memory()
    q_text, l_text = " ".join(map(str, quiet)), " ".join(map(str, loud))
    eb.stats()
    bad1, kern1 = bad_total(eb), b.udp_rcvbuf_errors() + softnet_drops()
    counted, kernel, wire = bad1 - bad0, kern1 - kern0, sent - errors
    net.info(
        f"TCP {q_text} Mbit/s undisturbed, {l_text} under the flood (medians of {rounds}: {pct}%); "
        f"{wire} bad datagrams sent, espd counted {counted}, kernel drops {kernel}; RSS {rss0} -> {rss1} kB"
    )
    c.check(
        pct >= 80,
        f"under the flood the tunnel kept {pct}% of its throughput ({l_text} vs {q_text} Mbit/s), not 80%",
    )
    c.check(counted <= wire, f"espd counted {counted} drops for {wire} bad datagrams (it counted good ones?)")
    c.check(
        counted + kernel >= wire,
        f"{wire} bad datagrams sent; espd counted {counted} and the kernel dropped {kernel}: "
        f"{wire - counted - kernel} unaccounted for",
    )
    c.check(rss1 - rss0 < 16384, f"espd b grew from {rss0} to {rss1} kB under the flood")
    # Replays of packets captured seconds earlier are far behind a 1024-packet window at these
    # rates: they count as outside_window (within it they would count as replayed).
    for k in ("unknown_spi", "auth_failed", "outside_window"):
        c.check((eb.counter(k) or 0) > 0, f"no {k} counted: the flood did not exercise that path")
    c.check((eb.counter("decapsulated") or 0) > 0, "b decapsulated nothing")
    p = ctl(net, "list", "request", d.control("b"), '{"op":"list"}', check=False)
    c.check(p.returncode == 0, f"list: {(p.stdout + p.stderr).strip().splitlines()[-1:]}")
    t = (jload(p.stdout).get("tunnels") or [{}])[0]
    moved = t.get("counters", {}).get("endpoint_changes")
    c.check(
        t.get("peer") == f"{A_OUT4}:4500" and moved == 0,
        f"b's peer moved under the flood: {json.dumps({'peer': t.get('peer'), 'endpoint_changes': moved})}",
    )
    stop_espds(net, c)
    c.done()


# The IKE daemon stand-in reads nothing for 3 s after the flood starts (the queue fills), then reads
# everything until the senders have finished, telling the peer's datagrams (tagged) from the flood's.
# Its clock starts at the GO file, not at its bind: espd's start-up time varies.
DAEMON = """
import json, os, socket, sys, time
path, go, done = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("never told to start")
    time.sleep(0.01)
time.sleep(3)
s.setblocking(False)
first = 0
while True:
    try:
        s.recv(70000)
        first += 1
    except BlockingIOError:
        break
peer = other = 0
s.settimeout(0.2)
while True:
    if time.monotonic() > deadline:
        sys.exit("never told the senders had finished")
    try:
        m = s.recv(70000)
    except socket.timeout:
        if os.path.exists(done):
            break  # the senders have finished and the queue is empty
        continue
    if m.endswith(b"PEER-IKE"):
        peer += 1
    else:
        other += 1
print(json.dumps({"queued": first, "peer": peer, "other": other}))
"""


def touch(path):
    open(path, "w").close()


@named("name", {"ike-flood": "ike-flood"})
def test_ike_flood(net, name):
    c = Checks()
    s = net.log("ike.sock")
    d = net.configs("pair", "--inner", "4", "--ike-punt", f"unix:{s}")
    limits = {"ike_per_second": 2000, "ike_per_source_per_second": 100, "ike_queue_bytes": 16384}
    d.edit("a", lambda cfg: cfg.update(limits=limits))
    net.pair()
    a, b = net.ns("a"), net.ns("b")
    b.addr("ul0", "192.0.2.67/24")
    # The daemon's own queue limit, high: what bounds the queue must be espd's send buffer.
    p = a.exec(["sysctl", "-qw", "net.unix.max_dgram_qlen=100000"], check=False)
    assert p.returncode == 0, "cannot raise net.unix.max_dgram_qlen"
    with open(net.log("daemon.py"), "w") as f:
        f.write(DAEMON)
    go, done = net.log("daemon.go"), net.log("daemon.done")
    daemon = net.python_bg("daemon", "a", net.log("daemon.py"), s, go, done)
    assert waited(lambda: os.path.exists(s) and stat.S_ISSOCK(os.stat(s).st_mode), 5), (
        f"the daemon stand-in did not bind {s}"
    )
    ea = net.espd("a", d)
    net.espd("b", d)
    rss0, _ = ea.memory()
    pinger = net.tool_bg("pinger", "b", "ping", "-c", 140, "-i", 0.05, d.hosts["a"]["inner4"])
    touch(go)
    ikeflood = flood_bg(
        net, "ikeflood", "b", "--to", f"{A_OUT4}:4500", "--from", "192.0.2.67", "--seconds", 8, "--ike", 5000
    )
    time.sleep(3.5)
    ikepeer = flood_bg(
        net, "ikepeer", "b", "--to", f"{A_OUT4}:4500", "--from", B_OUT4, "--seconds", 4, "--ike", 20,
        "--tag", "PEER-IKE",
    )  # fmt: skip
    ping_rc = 1
    for n, proc in (("ikeflood", ikeflood), ("ikepeer", ikepeer), ("pinger", pinger), ("daemon", daemon)):
        if n == "pinger":
            touch(done)
        rc = finished(proc, 15, f"{n} did not finish")
        if n == "pinger":
            ping_rc = rc
        else:
            assert rc == 0, f"{n}: {net.tail(n + '.err', 2)}"
    rss1, _ = ea.memory()
    ea.stats()
    fl, pr = last_json(net.log("ikeflood.out")), last_json(net.log("ikepeer.out"))
    flood, peer = fl["sent"]["ike"] - fl["send_errors"], pr["sent"]["ike"] - pr["send_errors"]
    wire = flood + peer
    punted, dropped = ea.counter("ike_punted") or 0, ea.counter("ike_punt_dropped") or 0
    limited, srclimited = ea.counter("ike_rate_limited") or 0, ea.counter("ike_source_limited") or 0
    dm = last_json(net.log("daemon.out"))
    queued, got_peer = dm.get("queued"), dm.get("peer")
    net.info(
        f"flood {flood} + peer {peer} IKE datagrams: {punted} punted ({queued} waited while the daemon "
        f"slept), {dropped} dropped at the full queue, {srclimited} over the source's budget, {limited} "
        f"over the global; the daemon got {got_peer} of the peer's {peer}; RSS {rss0} -> {rss1} kB; "
        f"{net.tail('pinger.out', 1)}"
    )
    c.check(
        ping_rc == 0,
        f"the ping through the tunnel lost packets during the IKE flood: {net.tail('pinger.out', 2)}",
    )
    c.check(
        got_peer == peer, f"the peer's IKE was shut out by the flood: the daemon got {got_peer} of {peer}"
    )
    c.check(dropped > 0, "nothing dropped at the queue while the daemon slept (is it bounded?)")
    c.check(queued < 200, f"{queued} datagrams queued behind a 16 KiB send buffer")
    c.check(srclimited > 0, "nothing over the source's budget at 5,000/s against 100/s")
    # The flood's own budget: 100 of burst and 100 a second for 8 s.
    c.check(
        punted + dropped <= peer + 100 + 8 * 100 + 50, f"{punted + dropped} IKE datagrams passed the limits"
    )
    c.check(
        punted + dropped + limited + srclimited == wire,
        f"{wire} IKE datagrams sent, espd accounts for {punted + dropped + limited + srclimited}",
    )
    c.check(rss1 - rss0 < 16384, f"espd a grew from {rss0} to {rss1} kB during the IKE flood")
    stop_espds(net, c)
    c.done()


def connections(sock, n=10):
    """Ten connections at once: how many were served and how many refused naming
    limits.control_connections."""
    conns = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        conns.append(s)
        time.sleep(0.05)
    refused = served = 0
    for s in conns:
        s.settimeout(3)
        try:
            s.sendall(b'{"op":"list"}\n')
            line = s.makefile().readline()
        except OSError:
            line = ""
        a = json.loads(line) if line else {}
        if a.get("ok"):
            served += 1
        elif (
            "too many control connections" in a.get("error", "")
            and "limits.control_connections" in a["error"]
        ):
            refused += 1
    for s in conns:
        s.close()
    return {"served": served, "refused": refused}


def request(net, name, sock, obj):
    """One request through control.py (a process of its own, as the bash suite sent it); the answer,
    or {"error": its output} when there is none."""
    p = ctl(net, name, "request", sock, json.dumps(obj), check=False)
    return jload(p.stdout) or {"error": (p.stdout + p.stderr).strip()}


def first_key(obj, key):
    """jq's `.. | objects | select(has(KEY)) | .[KEY]`, the first (pre-order); None if there is none."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        children = obj.values()
    elif isinstance(obj, list):
        children = obj
    else:
        return None
    for v in children:
        found = first_key(v, key)
        if found is not None:
            return found
    return None


def espd_check(net, name, config):
    """`espd check` on a config dict written to NAME.json: (exit code, output)."""
    path = net.log(f"{name}.json")
    with open(path, "w") as f:
        json.dump(config, f)
    p = run([net.espd_binary, "check", "--config", path], check=False)
    with open(net.log(f"{name}.out"), "w") as f:
        f.write(p.stdout + p.stderr)
    return p.returncode, p.stdout + p.stderr


def last_line(text):
    return (text.strip().splitlines() or [""])[-1]


@named("name", {"limits": "limits"})
def test_limits(net, name):
    c = Checks()
    d = net.configs("pair", "--inner", "4")
    d.edit(
        "a",
        lambda cfg: cfg.update(limits={"tunnels": 3, "control_connections": 4, "inbound_sas_per_tunnel": 2}),
    )
    # `espd check` refuses a file past a limit, with the line naming it.
    zero = dict(d.load("a"), limits={"tunnels": 0})
    sas = copy.deepcopy(d.load("a"))
    sas["limits"] = {"sas": 2}
    sas["tunnels"][0]["inbound"].append(dict(sas["tunnels"][0]["inbound"][0], spi="0x5d000001"))
    rc, out = espd_check(net, "zero", zero)
    c.check(
        rc == 2 and "limits.tunnels: expected an integer" in out,
        f"espd check with limits.tunnels 0: {last_line(out)}",
    )
    rc, out = espd_check(net, "sas", sas)
    c.check(
        rc == 2 and "3 SAs in all, more than limits.sas allows (2)" in out,
        f"espd check with limits.sas 2: {last_line(out)}",
    )
    net.pair()
    net.espd("a", d)
    sa = d.control("a")
    # Ten connections at once against limits.control_connections 4: six refused, the four served.
    conns = connections(sa)
    with open(net.log("conns.out"), "w") as f:
        f.write(json.dumps(conns) + "\n")
    c.check((conns["served"], conns["refused"]) == (4, 6), f"connections: {json.dumps(conns)}")
    # Tunnels: a has one; two more fit limits.tunnels 3, the third is refused.
    for i in (1, 2, 3):
        key = new_key()
        tunnel = {
            "name": f"x{i}",
            "mode": "tunnel",
            "remote_ts": [f"198.51.100.{200 + i}/32"],
            "inbound": [{"spi": f"0x5e00000{i}", "alg": "aes128gcm16", "key": key}],
            "outbound": {"spi": f"0x5f00000{i}", "alg": "aes128gcm16", "key": key},
        }
        r = request(net, f"add-x{i}", sa, {"op": "add_tunnel", "tunnel": tunnel})
        if i < 3:
            c.check(r.get("ok"), f"add_tunnel x{i} under the limit was refused: {r}")
        else:
            c.check(
                not r.get("ok") and "limits.tunnels" in str(r.get("error")),
                f"add_tunnel past limits.tunnels: {r}",
            )
    # Inbound SAs: the tunnel has one; a rekey adds a second, a third is refused.
    tname = d.load("a")["tunnels"][0]["name"]
    for i in (1, 2):
        sa_new = {"spi": f"0x5c00000{i}", "alg": "aes128gcm16", "key": new_key()}
        r = request(net, f"rekey{i}", sa, {"op": "rekey", "name": tname, "inbound": sa_new})
        if i == 1:
            c.check(r.get("ok"), f"a second inbound SA under the limit was refused: {r}")
        else:
            c.check(
                not r.get("ok") and "limits.inbound_sas_per_tunnel" in str(r.get("error")),
                f"a rekey past limits.inbound_sas_per_tunnel: {r}",
            )
    busy = first_key(request(net, "stats1", sa, {"op": "stats"}).get("stats"), "control_refused_busy")
    limit = first_key(request(net, "stats2", sa, {"op": "stats"}).get("stats"), "control_refused_limit")
    net.info(f"{json.dumps(conns)}; control_refused_busy {busy}, control_refused_limit {limit}")
    c.check(busy == 6, f"control_refused_busy = {busy}, expected 6")
    c.check(limit == 2, f"control_refused_limit = {limit}, expected 2 (a tunnel and an inbound SA)")
    stop_espds(net, c, hosts=("a",))
    c.done()
