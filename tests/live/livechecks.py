"""The checks the espd-only live suites share (each raises AssertionError saying what went wrong):
espd's counters and clean stop, pings, routes, iperf3 runs, nettool.py's JSON lines, echo servers
and numbered request streams (flows), stats snapshots with tunnels by name."""

import json
import os
import time

import pytest

from liveiperf import iperf_once
from livenet import words
from liveproc import Procs, run, wait_exit, wait_for


def named(name):
    """One test under its bash name (the pytest id: test_x[NAME], selected by -k NAME)."""
    return pytest.mark.parametrize("name", [name])


def preflight(net):
    """The binary runs (`espd --version`); a figure names it and its build time."""
    espd = net.espd_binary
    assert os.access(espd, os.X_OK), f"espd binary not found: {espd}"
    p = run([espd, "--version"], check=False)
    v = (p.stdout + p.stderr).strip()
    assert p.returncode == 0, f"espd --version failed: {v}"
    built = time.strftime("%F %T", time.localtime(os.path.getmtime(net.session.espd_source)))
    net.info(f"{net.session.espd_source} ({v.splitlines()[0] if v else ''}, built {built})")


# ------------------------------------------------------------------ espd


def stop(net, host, timeout=3, final_stats=True, report=True):
    """SIGTERM; espd-HOST must exit 0 within timeout, print the final stats line (final_stats), and
    leave no TUN (1 s); report: a figure when the TUN outlived it by 50 ms or more."""
    ms = net.espds[f"espd-{host}"].stop(timeout, final_stats=final_stats)
    if report and ms >= 50:
        net.info(f"{host}: TUN gone {ms} ms after exit")


def counter(net, host, key):
    """A counter of espd-HOST's last stats line; fails when espd has none of that name."""
    v = net.espds[f"espd-{host}"].counter(key)
    assert v is not None, f"espd-{host} stats: no counter {key!r} in the stats JSON"
    return v


def counter_ge(net, host, key, least):
    v = counter(net, host, key)
    assert v >= least, f"espd-{host} counter {key} = {v}, expected >= {least}"


def counter_zero_if_present(net, host, key):
    """A drop counter, when espd has it, is 0."""
    v = net.espds[f"espd-{host}"].counter(key)
    assert v is None or v == 0, f"espd-{host} counter {key} = {v}, expected 0"


class Snap(dict):
    """A stats object with its tunnels by name under "by" (snap())."""

    def t(self, tunnel, key):
        return self["by"][tunnel][key]

    def drops(self, *keys):
        """The sum of global drop counters (absent ones count 0)."""
        return sum(self.get("drops", {}).get(k, 0) for k in keys)

    def nonzero_drops(self, obj=None):
        d = (obj or self).get("drops", {})
        return {k: v for k, v in d.items() if v}


def as_snap(stats):
    s = Snap(stats)
    s["by"] = {t["name"]: t for t in stats.get("tunnels", [])}
    s.pop("tunnels", None)
    return s


def snap(net, host, label):
    """SIGUSR1 to espd-HOST; its stats, tunnels by name (also in HOST-LABEL.json)."""
    s = as_snap(net.espds[f"espd-{host}"].stats())
    with open(net.log(f"{host}-{label}.json"), "w") as f:
        json.dump(s, f)
    return s


def snap_until(net, host, label, pred, timeout):
    """snap() until pred(snapshot) holds or timeout seconds pass; the last snapshot and whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        s = snap(net, host, label)
        if pred(s):
            return s, True
        if time.monotonic() >= deadline:
            return s, False
        time.sleep(0.1)


# ------------------------------------------------------------------ traffic


def ping_ok(net, src, addr, *opts):
    """nettool.py ping (raw ICMP/ICMPv6: -c N, -s SIZE, ...) from namespace SRC; every echo answered."""
    p = net.ns(src).tool("ping", *opts, addr, timeout=60)
    with open(net.log(f"ping-{src}-{addr.replace(':', '_')}.log"), "a") as f:
        f.write(p.stdout + p.stderr)
    last = (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]
    assert p.returncode == 0, f"ping {src} -> {addr}: {last[0]}"


def route_ok(net, host, addr, dev="espd0"):
    """espd routes ADDR into its TUN (within 3 s)."""
    ns = net.ns(host)
    try:
        wait_for(lambda: ns.route_dev(addr) == dev, 3, what=f"a route to {addr}")
    except TimeoutError:
        raise AssertionError(f"{host}: no route to {addr} via {dev} ({ns.route_get(addr)})") from None


def iperf_ok(net, name, server, client, addr, seconds, *args):
    """One iperf3 run that completes and moves data; its rate is a figure of the test."""
    r = iperf_once(net.ns(server), net.ns(client), addr, seconds, net.procs, net.dir, name, args)
    assert r.ok, f"{name}: {r.summary}"
    net.info(f"{name} {r.summary}")
    return r


def iperf_udp_ok(net, name, server, client, addr):
    """UDP at 50 Mbit/s, 1200-byte datagrams, 2 s: loss <= 10%."""
    r = iperf_ok(net, name, server, client, addr, 2, "-u", "-b", "50M", "-l", "1200")
    loss = r.udp_lost_percent()
    assert loss <= 10, f"{name}: {loss}% of the UDP datagrams lost"


def iperf_bg(net, name, server, client, addr, port, seconds, *args):
    """iperf3 -s -1 on SERVER (NAME-server) and, in the background, the client (NAME, -J)."""
    net.bg(f"{name}-server", server, ["iperf3", "-s", "-1", "-p", str(port)])
    try:
        wait_for(lambda: net.ns(server).tcp_listening(port), 5, what="iperf3 -s")
    except TimeoutError:
        raise AssertionError(f"{name}: iperf3 server did not start") from None
    argv = ["timeout", str(seconds + 15), "iperf3", "-c", addr, "-p", str(port), "-t", str(seconds)]
    net.bg(name, client, argv + ["--connect-timeout", "3000", "-J", *map(str, args)])


def iperf_done(net, name):
    """Waits for the client of iperf_bg (25 s); (bytes received, "N Mbit/s"); fails if none moved."""
    if wait_exit(net.bgs[name], 25) is None:
        Procs.stop(net.bgs[name], timeout=1)
        raise AssertionError(f"{name}: iperf3 still running")
    Procs.stop(net.bgs[f"{name}-server"], timeout=2)
    try:
        result = json.loads(net.read(f"{name}.out"))
    except ValueError:
        result = {}
    received = result.get("end", {}).get("sum_received", {})
    got = received.get("bytes", 0)
    assert got > 0, f"{name}: iperf3 moved no data ({result.get('error', '')})"
    return got, f"{int(received['bits_per_second'] / 1e6)} Mbit/s"


def json_lines(net, name, event=None):
    """The JSON lines of NAME.out (nettool.py, ike_responder.py), those of one event if given."""
    out = []
    for line in net.read(f"{name}.out").splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and (event is None or obj.get("event") == event):
            out.append(obj)
    return out


def udp_server(net, host, *args, name="udp"):
    """nettool.py udp-server in the background (as NAME), bound within 3 s."""
    p = net.tool_bg(name, host, "udp-server", *args)
    port = int(args[list(args).index("--port") + 1])
    try:
        wait_for(lambda: net.ns(host).udp_bound(port), 3, what="the udp server")
    except TimeoutError:
        raise AssertionError(f"udp server on {host} did not start") from None
    return p


def echo_bg(net, name, host, addr, port, proto="udp", seconds=30, *args):
    """nettool.py echo-tag (replies name the sender) in the background, listening within 3 s."""
    net.tool_bg(
        name, host, "echo-tag", "--bind", addr, "--port", port, "--proto", proto, "--duration", seconds, *args
    )
    try:
        wait_for(lambda: '"listening"' in net.read(f"{name}.out"), 3, what=f"echo server {name}")
    except TimeoutError:
        raise AssertionError(
            f"echo server {name} on {host} {addr}:{port}/{proto} did not start: {net.tail(f'{name}.err', 1)}"
        ) from None


def flow_bg(net, name, host, *args):
    """nettool.py flow (numbered requests to an echo-tag server) in the background; ARGS as values
    or as one string of words."""
    net.tool_bg(name, host, "flow", *words(args))


def flow_wait(net, seconds, *names):
    """Waits for background streams to end; one still running after SECONDS is stopped and fails."""
    late = []
    for n in names:
        if wait_exit(net.bgs[n], seconds) is None:
            Procs.stop(net.bgs[n], timeout=1)
            late.append(n)
    assert not late, f"{', '.join(late)}: still running after {seconds}s"


def flow_summary(net, name):
    lines = net.read(f"{name}.out").strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else None
    except ValueError:
        return None


def flow_ok(net, name, maxlost=0):
    """A flow's summary: every request sent, at most MAXLOST unanswered, no foreign reply, every
    reply naming the expected sender, none malformed. Returns the summary."""
    f = flow_summary(net, name)
    assert f is not None, f"{name}: no summary ({net.tail(f'{name}.err', 1)})"
    ok = (
        f["sent"] == f["count"]
        and f["lost"] <= maxlost
        and f["foreign"] == {}
        and f["bad_from"] == 0
        and f["malformed"] == 0
    )
    keys = ("sent", "count", "received", "lost", "lost_seqs", "foreign", "bad_from", "from", "error")
    assert ok, f"{name}: {json.dumps({k: f.get(k) for k in keys})}"
    return f


def kdrops(net, host):
    """The kernel's drop counters that explain loss outside espd's own counters."""
    ns = net.ns(host)
    rows = [
        x.split() for x in run(ns.argv(["cat", "/proc/net/snmp"])).stdout.splitlines() if x.startswith("Udp:")
    ]
    rcv, snd = (rows[1][rows[0].index(k)] for k in ("RcvbufErrors", "SndbufErrors"))
    try:
        s = ns.link_stats("espd0")
        tun = f"{s['tx']['dropped']} rx_dropped {s['rx']['dropped']}"
    except Exception:  # no TUN (any more)
        tun = "? rx_dropped ?"
    return f"{host}: udp rcvbuf_errors {rcv} sndbuf_errors {snd}, espd0 tx_dropped {tun}"


def tshark_fields(cap, display_filter, *fields):
    """Tab-separated field rows of the packets of a capture that match a display filter."""
    args = []
    for f in fields:
        args += ["-e", f]
    out = cap.tshark("-Y", display_filter, "-T", "fields", *args)
    return [line.split("\t") for line in out.splitlines() if line.strip()]
