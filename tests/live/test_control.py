"""The control plane, live (was scripts/control-test.sh): two espd in network namespaces driven over
their control sockets (scripts/netns/control.py speaks the protocol as an IKE daemon would; the espd
CLI is tested too).
  cli              tunnel add/list/delete, rekey, sa delete, stats via the espd commands; routes
                   follow; socket mode 0600; no key in any answer or log
  rekey            iperf3 UDP --bidir, 200 Mbit/s each way in 1200-byte datagrams, 15 s: a baseline
                   run, then the same run with a hitless rekey of both directions every second (new
                   inbound SAs on both ends, then both outbound switches, the previous inbound SAs
                   deleted 0.3 s later); every datagram lost counts: at most the baseline's loss +
                   0.01% of the datagrams sent (+1), and no espd drop counter moves
  churn            1,000 tunnels added and deleted at runtime while iperf3 UDP runs in another: no
                   loss, routes back to what they were
  malformed        bad JSON, unknown op, wrong key length, duplicate SPI, a missing tunnel, ...: an
                   error answer each, nothing changed, a ping flow uninterrupted
  expiry           soft and hard lifetime events (packets, seconds, sequence exhaustion) reach a
                   subscriber; a hard-expired SA drops traffic and counts it
  metrics          GET /metrics parses as the Prometheus text format; counters match `espd stats`
  owner            another user cannot connect (mode 0600), nor through a socket made world-writable
                   (SO_PEERCRED)
  storm            b holds 100,000 extra tunnels (configs.py extra; $ESPD_STORM_TUNNELS) besides the
                   one carrying the rekey test's iperf3 load; baseline run, then the same run during a
                   storm of 20,000 rekey steps (60,000 requests, one connection, each sent once the
                   last is answered): loss within the baseline's + 0.01%, no espd drop counter moves,
                   the storm done in 18 s (a 20 s load); b's longest loop stall printed with its
                   target of 1 ms, a figure, not a criterion (a's too, and the worst wakeup delay of a
                   thread sleeping 1 ms: the machine's own share of any gap)
rekey-workers, churn-workers and storm-workers: the same with `--workers 2` on both ends. The 200
Mbit/s tests (rekey, storm) run $ESPD_RELEASE (default .build/release/espd if it exists, else
$ESPD): a debug build does not carry that load; rekey and storm get a second try after a failure.

    sudo ESPD=.build/debug/espd ESPD_RELEASE=.build/release/espd \
        python3 -m pytest -q -rxXs -m control tests/live
"""

import json
import os
import pwd
import re
import shutil
import socket
import stat
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from liveconfigs import CONTROL_PY, configs_py
from livecontrol import (
    Checks,
    cli,
    cpu_text,
    ctl,
    ctl_bg,
    espd_losses,
    file_has,
    finished,
    ip_lines,
    jload,
    last_json,
    named,
    new_key,
    no_espd_drops,
    pair_up,
    retry_once,
    seconds_since,
    stall_text,
    stop_espds,
    thread_ticks,
    timed_output,
    tun_drops,
    waited,
)
from liveiperf import iperf_once
from liveproc import run, wait_exit
from netlab import REPO

pytestmark = pytest.mark.control

# The rekey and storm tests' load: iperf3 UDP both ways, 200 Mbit/s each way in 1200-byte datagrams
# (about 20,800 datagrams/s each way). iperf3's own sockets get 4 MiB buffers (-w): with the default
# 208 KiB the receiving iperf3 itself lost 0.02-0.9% of the datagrams on a 2-vCPU VM, with 4 MiB
# none, so the baseline measures espd. espd keeps its default socket buffers.
LOAD_SECS = 15
STORM_LOAD_SECS = 20  # room for 20,000 steps from one connection (1,500-4,000 steps/s) inside the load
LOAD = ("-u", "-b", "200M", "-l", "1200", "-w", "4M", "--bidir")
STORM_STEPS = 20000
WORKERS = ("--workers", "2")


@pytest.fixture(scope="module")
def release_espd(netsession):
    """A copy of $ESPD_RELEASE (default .build/release/espd if it exists, else the session's espd)."""
    source = os.environ.get("ESPD_RELEASE") or os.path.join(REPO, ".build", "release", "espd")
    if not os.path.isabs(source):
        source = os.path.join(REPO, source)
    if not os.access(source, os.X_OK):
        return netsession.espd
    copy = os.path.join(netsession.tmp, "release", "espd")  # named espd: its threads' names are espd-*
    os.makedirs(os.path.dirname(copy), exist_ok=True)
    shutil.copy2(source, copy)
    print(f"\nrekey and storm tests: {source}")
    return copy


@pytest.fixture(scope="module")
def storm_tunnels():
    n = os.environ.get("ESPD_STORM_TUNNELS", "100000")
    assert re.fullmatch(r"[1-9][0-9]*", n), f"ESPD_STORM_TUNNELS: expected a positive number, got {n!r}"
    return int(n)


def within_baseline(lost_base, lost, sent):
    """LOST <= LOST_BASELINE + 0.01% of SENT + 1."""
    return lost <= lost_base + sent // 10000 + 1


def allowed(lost_base, sent):
    return lost_base + sent // 10000 + 1


def bidir(result, key):
    """A count of both directions of an iperf3 --bidir UDP run."""
    end = result["end"]
    return end["sum"].get(key, 0) + end.get("sum_bidir_reverse", {}).get(key, 0)


def load_run(net, name, addr, seconds):
    """LOAD for `seconds`, iperf3 server on b, client on a; (lost, sent, kernel): datagrams of both
    directions and, for information, what the kernels dropped meanwhile, the worst delay the
    scheduler gave a thread that slept 1 ms, and the CPU seconds each espd thread used."""
    a, b = net.ns("a"), net.ns("b")
    pa, pb = net.espds["espd-a"].pid, net.espds["espd-b"].pid
    ra, rb, ta, tb = a.udp_rcvbuf_errors(), b.udp_rcvbuf_errors(), tun_drops(a), tun_drops(b)
    ca, cb = thread_ticks(pa), thread_ticks(pb)
    wakeups = ctl_bg(net, f"{name}-wakeups", "a", "wakeups", "--seconds", seconds)
    r = iperf_once(b, a, addr, seconds, net.procs, net.dir, name, LOAD)
    assert r.ok, f"{name}: {r.summary}"
    kernel = (
        f"UdpRcvbufErrors a {a.udp_rcvbuf_errors() - ra} b {b.udp_rcvbuf_errors() - rb}, "
        f"TUN queue drops a {tun_drops(a) - ta} b {tun_drops(b) - tb}"
    )
    if wait_exit(wakeups, 3) is not None:
        kernel += f", worst wakeup {last_json(net.log(f'{name}-wakeups.out')).get('worst_ms')} ms"
    kernel += f", CPU s a: {cpu_text(ca, thread_ticks(pa))}, b: {cpu_text(cb, thread_ticks(pb))}"
    return bidir(r.result, "lost_packets"), bidir(r.result, "packets"), kernel


def rcvbuf_ab(net):
    """UDP datagrams both namespaces' kernels dropped for a full socket buffer: iperf3's loss."""
    return net.ns("a").udp_rcvbuf_errors() + net.ns("b").udp_rcvbuf_errors()


def no_keys_leaked(checks, cfg, logdir):
    """No key of the configs appears in any *.out or *.err of the test."""
    keys = [
        k[2:] if k.startswith("0x") else k
        for h in ("a", "b")
        for t in cfg.load(h)["tunnels"]
        for sa in [*t["inbound"], t["outbound"]]
        for k in (sa.get("key"), sa.get("auth_key"))
        if k
    ]
    for name in sorted(os.listdir(logdir)):
        if not name.endswith((".out", ".err")):
            continue
        with open(os.path.join(logdir, name), errors="replace") as f:
            text = f.read().lower()
        if any(k.lower() in text for k in keys):
            checks.fail(f"key material in {name}")
            return


# ------------------------------------------------------------------ tests


@named("name", {"cli": "cli"})
def test_cli(net, name):
    c = Checks()
    d = net.configs("pair", "--inner", "4,6")
    pair_up(net, d)
    a = net.ns("a")
    sa, sb = d.control("a"), d.control("b")
    mode = stat.S_IMODE(os.stat(sa).st_mode)
    c.check(mode == 0o600, f"control socket mode is {mode:o}, expected 600")
    out = cli(net, "list", "tunnel", "list", "--json", "--control", sa).stdout
    lst = jload(out)
    t0 = (lst.get("tunnels") or [{}])[0]
    c.check(
        lst.get("ok") and len(lst["tunnels"]) == 1 and t0.get("name") == "b" and len(t0["inbound"]) == 1,
        f"tunnel list --json: {out[:300]}",
    )
    out = cli(net, "list-text", "tunnel", "list", "--control", sa).stdout
    c.check(re.search(r"(?m)^b: tunnel", out), f"tunnel list (text): {out.splitlines()[:2]}")

    # a tunnel added and deleted with the CLI: its route comes and goes
    extra = {
        "name": "extra",
        "mode": "tunnel",
        "remote_ts": ["2001:db8:77::/64"],
        "inbound": [{"spi": "0x7700aa01", "alg": "aes256gcm16", "key": new_key(36)}],
        "outbound": {"spi": "0x7700bb01", "alg": "aes256gcm16", "key": new_key(36)},
    }
    with open(net.log("extra.json"), "w") as f:
        json.dump(extra, f)
    cli(net, "add", "tunnel", "add", "--json", net.log("extra.json"), "--control", sa)
    c.check(
        waited(lambda: a.route_dev("2001:db8:77::5") == "espd0", 2),
        "no route into the TUN for an added tunnel's remote_ts",
    )
    p = cli(net, "dup", "tunnel", "add", "--json", "-", "--control", sa, input=json.dumps(extra), check=False)
    c.check(
        p.returncode == 2 and "exists" in p.stderr,
        f"adding a tunnel twice: expected exit 2 and 'exists', got: {p.stderr}",
    )
    c.check(extra["inbound"][0]["key"] not in p.stderr.lower(), "an error quotes key material")
    cli(net, "delete", "tunnel", "delete", "extra", "--control", sa)
    c.check(a.route_dev("2001:db8:77::5") != "espd0", "the deleted tunnel's route is still there")

    # rekey through the CLI (inbound on b first, then outbound on a), old SA deleted with `sa delete`
    old = d.load("b")["tunnels"][0]["inbound"][0]["spi"]
    key, newspi = new_key(20), "0x5a5a0001"
    sa_new = {"spi": newspi, "alg": "aes128gcm16", "key": key}
    for n, peer, sock, direction in (("rk1", "a", sb, "inbound"), ("rk2", "b", sa, "outbound")):
        p = cli(
            net,
            n,
            "rekey",
            peer,
            "--json",
            "-",
            "--control",
            sock,
            input=json.dumps({direction: sa_new}),
            check=False,
        )
        c.check(p.returncode == 0, f"rekey {direction}: {p.stdout}{p.stderr}")
    b4 = d.hosts["b"]["inner4"]
    c.check(
        a.tool("ping", "-c", 3, "198.51.100.2").returncode == 0
        or a.tool("ping", "-c", 3, b4).returncode == 0,
        "ping after the CLI rekey failed",
    )
    cli(net, "sa-delete", "sa", "delete", old, "--control", sb)
    inbound = (
        jload(cli(net, "list-b", "tunnel", "list", "--json", "--control", sb).stdout).get("tunnels") or [{}]
    )[0].get("inbound")
    c.check(
        inbound and len(inbound) == 1 and inbound[0]["spi"] == newspi and inbound[0]["packets"] >= 3,
        f"after rekey + sa delete, b's inbound SAs: {json.dumps(inbound)}",
    )
    out = cli(net, "stats", "stats", "--json", "--control", sb).stdout
    st = jload(out).get("stats") or {}
    c.check(
        jload(out).get("ok")
        and st.get("decapsulated", 0) >= 3
        and (st.get("tunnels") or [{}])[0].get("packets_in", 0) >= 3,
        f"stats --json: {out[:300]}",
    )
    out = cli(net, "stats-text", "stats", "--control", sb).stdout
    c.check(re.search(r"(?m)^tunnel a:", out), "stats (text) has no tunnel line")
    watch = timed_output(
        [net.espd_binary, "stats", "--watch", "1", "--json", "--control", sb], net.log("watch.out"), 3
    )
    samples = sum(1 for x in watch.splitlines() if '"ok":true' in x)
    c.check(samples >= 2, f"stats --watch 1 printed {samples} samples in 3 s")
    p = cli(net, "nosock", "stats", "--control", net.log("nosuch.sock"), check=False)
    c.check(p.returncode == 1 and "is espd running" in p.stderr, f"stats on a missing socket: {p.stderr}")
    stop_espds(net, c)
    c.check(not os.path.exists(sa), "the control socket file is left after exit")
    no_keys_leaked(c, d, net.dir)
    c.done()


def rekey(net, args):
    c = Checks()
    d = net.configs("pair", "--inner", "4")
    pair_up(net, d, args)
    b4 = d.hosts["b"]["inner4"]
    lost_base, sent_base, kern_base = load_run(net, "base", b4, LOAD_SECS)
    # a rekey every second from 0.7 s on (iperf3's stream starts within about 0.5 s), the last one's
    # old SAs deleted at 15.0 s, before iperf3's 15 s are over
    rekeyer = ctl_bg(
        net, "rekeyer", "a", "rekey-loop", "--a", d.control("a"), "--b", d.control("b"),
        "--tunnel-a", "b", "--tunnel-b", "a", "--alg", "aes128gcm16", "--seconds", LOAD_SECS,
        "--interval", 1, "--delete-delay", 0.3, "--delay", 0.7,
    )  # fmt: skip
    lost, sent, kern = load_run(net, "rekey", b4, LOAD_SECS)
    rc = finished(rekeyer, 10, "the rekey loop did not finish")
    assert rc == 0, f"rekey loop failed: {net.tail('rekeyer.err', 2)}"
    summary = last_json(net.log("rekeyer.out"))
    rekeys = summary.get("rekeys", 0)
    c.check(rekeys >= LOAD_SECS - 1, f"only {rekeys} rekeys in {LOAD_SECS} s")
    counters = no_espd_drops(net, c, "during the rekeys")
    figures = (
        f"baseline lost {lost_base} of {sent_base} ({kern_base}); with {rekeys} rekeys lost {lost} of {sent} "
        f"({kern}); worst rekey round {summary.get('worst_round_ms')} ms; {espd_losses(counters)}; "
        f"loop stall a {stall_text(counters.get('a'))}, b {stall_text(counters.get('b'))}"
    )
    if within_baseline(lost_base, lost, sent):
        net.info(figures)
    else:
        c.fail(
            f"the rekeys lost datagrams: {lost} lost, at most {allowed(lost_base, sent)} allowed: {figures}"
        )
    p = cli(net, "list-a", "tunnel", "list", "--json", "--control", d.control("a"), check=False)
    inbound = (jload(p.stdout).get("tunnels") or [{}])[0].get("inbound") or []
    c.check(len(inbound) == 1, "old inbound SAs left on a")
    stop_espds(net, c)
    c.done()


@named("args", {"rekey": (), "rekey-workers": WORKERS})
def test_rekey(net, release_espd, args):
    net.espd_binary = release_espd  # 200 Mbit/s each way: the release binary
    retry_once(net, lambda: rekey(net, args))


@named("args", {"churn": (), "churn-workers": WORKERS})
def test_churn(net, args):
    c = Checks()
    d = net.configs("pair", "--inner", "4,6")
    pair_up(net, d, args)
    a, b = net.ns("a"), net.ns("b")
    b4 = d.hosts["b"]["inner4"]
    routes0 = len(ip_lines(a, "-6", "route", "show", "dev", "espd0"))
    r0 = rcvbuf_ab(net)
    churner = ctl_bg(net, "churner", "a", "churn", "--sock", d.control("a"), "--count", 1000)
    r = iperf_once(b, a, b4, 25, net.procs, net.dir, "live", ("-u", "-b", "20M", "-l", "1000"))
    assert r.ok, f"live tunnel: {r.summary}"
    kern = rcvbuf_ab(net) - r0
    rc = finished(churner, 60, "the churn did not finish within 80 s")
    assert rc == 0, f"churn failed: {net.tail('churner.err', 2)} {net.tail('churner.out', 1)}"
    loss, packets = r.result["end"]["sum"]["lost_packets"], r.result["end"]["sum"]["packets"]
    churned = json.dumps(last_json(net.log("churner.out")), separators=(",", ":"))
    net.info(f"{churned}; live tunnel lost {loss} of {packets} ({kern} in full receiver sockets)")
    c.check(
        loss <= kern,
        f"the live tunnel lost {loss} packets while 1,000 tunnels came and went "
        f"({kern} of them in full receiver sockets)",
    )
    no_espd_drops(net, c, "while the tunnels churned")
    routes1 = len(ip_lines(a, "-6", "route", "show", "dev", "espd0"))
    c.check(routes1 == routes0, f"routes through espd0: {routes0} before, {routes1} after")
    stop_espds(net, c)
    c.done()


def oversized(sock):
    """An oversized line: an error answer, the rest of the line dropped, the next request answered."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(sock)
        s.sendall(b"x" * 1100000 + b"\n" + b'{"op":"list"}\n')
        data = b""
        while data.count(b"\n") < 2:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    lines = data.split(b"\n")
    a, b = json.loads(lines[0]), json.loads(lines[1])
    assert a["ok"] is False and "longer" in a["error"], a
    assert b["ok"] is True and "tunnels" in b, b  # the connection goes on with the next line


@named("name", {"malformed": "malformed"})
def test_malformed(net, name):
    c = Checks()
    d = net.configs("pair", "--inner", "4")
    pair_up(net, d)
    b4 = d.hosts["b"]["inner4"]
    pinger = net.tool_bg("pinger", "a", "ping", "-c", 40, "-i", 0.05, b4)
    p = ctl(net, "malformed", "malformed", "--sock", d.control("a"), "--tunnel", "b", check=False)
    c.check(p.returncode == 0, f"control.py malformed: {p.stderr[-300:]}{p.stdout[-300:]}")
    net.info(f"{last_json(net.log('malformed.out')).get('cases')} bad requests refused")
    try:
        oversized(d.control("a"))
    except (AssertionError, OSError, ValueError, IndexError) as e:
        c.fail(f"oversized request: {e!r}")
    rc = wait_exit(pinger, 10)
    c.check(rc == 0, f"the ping flow was interrupted: {net.tail('pinger.out', 1)}")
    stop_espds(net, c)
    c.done()


def rekey_request(name, direction, spi, key, **extra):
    """{"op":"rekey","name":NAME,DIRECTION:{spi, aes128gcm16, key, EXTRA}} as control.py's argument."""
    sa = {"spi": spi, "alg": "aes128gcm16", "key": key, **extra}
    return json.dumps({"op": "rekey", "name": name, direction: sa})


def stats_or_fail(checks, e):
    try:
        e.stats()
    except AssertionError as err:
        checks.fail(str(err))


@named("name", {"expiry": "expiry"})
def test_expiry(net, name):
    c = Checks()
    d = net.configs("pair", "--inner", "4")
    ea, _ = pair_up(net, d)
    a = net.ns("a")
    b4, sa, sb = d.hosts["b"]["inner4"], d.control("a"), d.control("b")
    ev_a, ev_b = net.log("events-a.out"), net.log("events-b.out")
    net.bg("events-a", "a", [net.espd_binary, "events", "--control", sa])
    ctl_bg(net, "events-b", "b", "events", "--sock", sb, "--seconds", 12)
    assert waited(lambda: file_has(ev_b, "subscribed"), 3), "no subscription on b"
    assert waited(lambda: file_has(net.log("events-a.err"), "subscribed"), 3), (
        f"no subscription on a: {net.tail('events-a.err', 1)}"
    )
    # a's new outbound SA: soft at 20 packets, hard at 40; b's new inbound SA: soft after 2 s, hard after 4 s
    k1 = new_key()
    seconds = {"seconds_soft": 2, "seconds_hard": 4}
    ctl(net, "rk1", "request", sb, rekey_request("a", "inbound", "0x11110001", k1, lifetime=seconds))
    packets = {"packets_soft": 20, "packets_hard": 40}
    ctl(net, "rk2", "request", sa, rekey_request("b", "outbound", "0x11110001", k1, lifetime=packets))
    p = a.tool("ping", "-c", 60, "-i", 0.01, "-W", 0.2, "--min", 1, b4)
    with open(net.log("ping1.log"), "w") as f:
        f.write(p.stdout + p.stderr)
    c.check(
        waited(lambda: file_has(ev_a, '"spi":"0x11110001","hard":true'), 3),
        lambda: f"no hard event on a: {net.read('events-a.out')}",
    )
    c.check(
        file_has(ev_a, '"spi":"0x11110001","hard":false,"reason":"packets","direction":"outbound"'),
        lambda: f"no soft packets event on a: {net.read('events-a.out')}",
    )
    stats_or_fail(c, ea)
    expired = ea.counter("expired")
    c.check((expired or 0) >= 15, f"a counted {expired} packets dropped as expired, expected about 20")
    p = cli(net, "list-a", "tunnel", "list", "--json", "--control", sa, check=False)
    out_sa = (jload(p.stdout).get("tunnels") or [{}])[0].get("outbound") or {}
    c.check(
        out_sa.get("state") == "expired" and out_sa.get("packets") == 40,
        f"a's outbound SA: {json.dumps(out_sa)}",
    )
    # b's seconds lifetime: soft then hard, about 2 and 4 s after the rekey
    c.check(
        waited(
            lambda: file_has(ev_b, '"spi":"0x11110001","hard":true,"reason":"seconds","direction":"inbound"'),
            6,
        ),
        lambda: f"no hard seconds event on b: {net.read('events-b.out')}",
    )
    c.check(
        file_has(ev_b, '"spi":"0x11110001","hard":false,"reason":"seconds"'), "no soft seconds event on b"
    )
    # sequence exhaustion: an outbound SA that starts 16 numbers before the end of the 32-bit space
    k2 = new_key()
    ctl(net, "rk3", "request", sb, rekey_request("a", "inbound", "0x22220001", k2, replay_seq="0xffffffe0"))
    ctl(net, "rk4", "request", sa, rekey_request("b", "outbound", "0x22220001", k2, seq="0xfffffff0"))
    p = a.tool("ping", "-c", 25, "-i", 0.01, "-W", 0.2, "--min", 1, b4)
    with open(net.log("ping2.log"), "w") as f:
        f.write(p.stdout + p.stderr)

    def seq_events():
        return [x for x in net.read("events-a.out").splitlines() if "0x22220001" in x]

    c.check(
        waited(lambda: file_has(ev_a, '"spi":"0x22220001","hard":true,"reason":"sequence"'), 3),
        lambda: f"no sequence exhaustion event: {seq_events()}",
    )
    c.check(file_has(ev_a, '"spi":"0x22220001","hard":false,"reason":"sequence"'), "no soft sequence event")
    stats_or_fail(c, ea)
    ex = ea.counter("sequence_exhausted")
    c.check((ex or 0) >= 5, f"a counted sequence_exhausted = {ex}, expected about 10")
    n_a = sum(1 for x in net.read("events-a.out").splitlines() if x)
    n_b = sum(1 for x in net.read("events-b.out").splitlines() if '"event"' in x)
    net.info(f"a: {n_a} events, expired {expired}, sequence_exhausted {ex}; b: {n_b} events")
    stop_espds(net, c)
    c.done()


def compare_metrics(text, stats):
    """The Prometheus text parsed; its counters against `espd stats --json`; a summary line."""
    m = {}
    families = 0
    for fam in text_string_to_metric_families(text):
        families += 1
        for s in fam.samples:
            m[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(name, **labels):
        return m[(name, tuple(sorted(labels.items())))]

    checks = [
        (get("espd_packets_total", verdict="decapsulated"), stats["decapsulated"]),
        (get("espd_packets_total", verdict="encapsulated"), stats["encapsulated"]),
        (get("espd_drops_total", reason="auth_failed"), stats["drops"]["auth_failed"]),
        (get("espd_batches_total"), None),
    ]
    t = stats["tunnels"][0]
    checks += [
        (get("espd_tunnel_packets_total", tunnel=t["name"], direction="in"), t["packets_in"]),
        (get("espd_tunnel_packets_total", tunnel=t["name"], direction="out"), t["packets_out"]),
        (get("espd_tunnel_bytes_total", tunnel=t["name"], direction="in"), t["bytes_in"]),
        (get("espd_tunnel_bytes_total", tunnel=t["name"], direction="out"), t["bytes_out"]),
        (get("espd_tunnel_endpoint_changes_total", tunnel=t["name"]), t["endpoint_changes"]),
    ]
    bad = [(a, b) for a, b in checks if b is not None and a != b]
    assert not bad, f"mismatches (metrics, stats): {bad}"
    assert stats["encapsulated"] > 1000, stats["encapsulated"]
    for r, n in stats["drops"].items():
        assert get("espd_drops_total", reason=r) == n, r
    return f"{families} metric families, {len(m)} samples; counters match"


@named("name", {"metrics": "metrics"})
def test_metrics(net, name):
    c = Checks()
    d = net.configs("pair", "--inner", "4")
    for h in ("a", "b"):
        d.edit(h, lambda cfg: cfg.update(metrics="127.0.0.1:9469"))
    pair_up(net, d)
    a, b = net.ns("a"), net.ns("b")
    b4 = d.hosts["b"]["inner4"]
    c.check(a.tool("ping", "-c", 20, "-i", 0.01, b4).returncode == 0, "ping through the tunnel failed")
    r = iperf_once(b, a, b4, 2, net.procs, net.dir, "udp", ("-u", "-b", "10M", "-l", "1000"))
    c.check(r.ok, f"iperf3: {r.summary}")
    time.sleep(0.5)  # let the last packets land
    url = "http://127.0.0.1:9469/metrics"
    p = a.exec(["curl", "-sS", "-D", net.log("headers.txt"), url, "-o", net.log("metrics.txt")], check=False)
    assert p.returncode == 0, "curl of the metrics endpoint failed"
    stats = jload(cli(net, "stats", "stats", "--json", "--control", d.control("a")).stdout)
    headers = net.read("headers.txt")
    c.check(
        re.search(r"(?im)^content-type: text/plain; version=0\.0\.4", headers),
        f"content type: {[x for x in headers.splitlines() if 'content-type' in x.lower()]}",
    )
    summary = ""
    try:
        summary = compare_metrics(net.read("metrics.txt"), stats["stats"])
    except Exception as e:  # noqa: BLE001  (whatever the comparison raises is its failure)
        c.fail(f"metrics vs stats: {e!r}")
    p = a.exec(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9469/nothing"], check=False
    )
    c.check(p.stdout == "404", f"GET /nothing answered {p.stdout}, expected 404")
    net.info(summary)
    stop_espds(net, c)
    c.done()


def as_nobody(script, sock):
    """control.py request SOCK {"op":"list"} as uid 65534 (a Python it may run: /usr/bin/python3 if
    there is one); (exit code, output)."""
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, script, "request", sock]
    p = run([*argv, '{"op":"list"}'], check=False)
    return p.returncode, p.stdout + p.stderr


@named("name", {"owner": "owner"})
def test_owner(net, name):
    c = Checks()
    d = net.configs("pair", "--inner", "4")
    rundir = f"/run/{net.prefix}"
    os.makedirs(rundir, exist_ok=True)
    os.chmod(rundir, 0o755)
    try:
        s = f"{rundir}/a.sock"
        d.edit("a", lambda cfg: cfg.update(control=s))
        net.pair()
        net.espd("a", d)
        st = os.stat(s)
        mode = f"{stat.S_IMODE(st.st_mode):o} {pwd.getpwuid(st.st_uid).pw_name}"
        c.check(mode == "600 root", f"socket is {mode}, expected 600 root")
        # The client runs as uid 65534 from a copy it can read (the checkout may be private to root).
        script = f"{rundir}/control.py"
        shutil.copy(CONTROL_PY, script)
        os.chmod(script, 0o644)
        rc, out = as_nobody(script, s)
        c.check(rc != 0, f"uid 65534 got an answer through a 0600 socket: {out}")
        c.check(
            re.search(r"PermissionError: \[Errno 13\]", out),
            f"expected EACCES on connect for uid 65534: {out.strip().splitlines()[-1:]}",
        )
        os.chmod(s, 0o666)  # even so, espd checks the peer's credentials
        rc, out = as_nobody(script, s)
        c.check(rc != 0, f"uid 65534 got an answer through a world-writable socket: {out}")
        c.check(
            re.search(r'"ok": false.*not the socket.s owner', out),
            f"expected a refusal naming the owner: {out.strip().splitlines()[-1:]}",
        )
        p = ctl(net, "root", "request", s, '{"op":"list"}', check=False)
        c.check(p.returncode == 0, "root (the owner) was refused")
        stop_espds(net, c, hosts=("a",))
        c.check(not os.path.exists(s), "socket left after exit")
    finally:
        shutil.rmtree(rundir, ignore_errors=True)
    c.done()


def storm(net, args, tunnels):
    c = Checks()
    d = net.configs("pair", "--inner", "4")
    t0 = time.monotonic()
    configs_py("extra", d.dir, "--host", "b", "--tunnels", tunnels)
    gen_s = seconds_since(t0)
    net.pair()
    net.espd("a", d, *args, timeout=120)
    t0 = time.monotonic()
    net.espd("b", d, *args, timeout=120)
    sb = d.control("b")
    ctl(net, "up-b", "wait", "--sock", sb, "--seconds", 120)
    up_s = seconds_since(t0)
    b4 = d.hosts["b"]["inner4"]
    lost_base, sent_base, kern_base = load_run(net, "base", b4, STORM_LOAD_SECS)
    # the storm from 1 s into the run, 18 s at most: it is over before iperf3's 20 s are
    stormer = ctl_bg(
        net, "storm", "b", "storm", "--sock", sb, "--tunnels", tunnels, "--steps", STORM_STEPS,
        "--seconds", STORM_LOAD_SECS - 2, "--delay", 1,
    )  # fmt: skip
    lost, sent, kern = load_run(net, "storm", b4, STORM_LOAD_SECS)
    rc = finished(stormer, 20, "the storm did not stop")
    assert rc == 0, f"the storm failed: {net.tail('storm.err', 2)} {net.tail('storm.out', 1)}"
    so = last_json(net.log("storm.out"))
    steps = so.get("steps")
    counters = no_espd_drops(net, c, "during the storm", 60)
    figures = (
        f"b: {tunnels + 1} tunnels, config written in {gen_s}s, up in {up_s}s; baseline lost {lost_base} "
        f"of {sent_base} ({kern_base}); during the storm lost {lost} of {sent} ({kern}); storm "
        f"{steps} of {so.get('of')} steps in {so.get('seconds')} s ({so.get('steps_per_s')} steps/s, "
        f"worst request {so.get('worst_request_ms')} ms, the client used {so.get('client_cpu_s')} s CPU); "
        f"{espd_losses(counters)}; loop stall b {stall_text(counters.get('b'))}, "
        f"a (no storm) {stall_text(counters.get('a'))}"
    )
    why = []
    if steps != STORM_STEPS:
        why.append(f"the storm did {steps} of {STORM_STEPS} rekey steps in {STORM_LOAD_SECS - 2} s")
    if not within_baseline(lost_base, lost, sent):
        why.append(f"the storm cost datagrams: {lost} lost, at most {allowed(lost_base, sent)} allowed")
    # The stall that counts is the stormed espd's (b); a's is printed to tell the machine's share.
    # A benchmark figure (issue 14: "longest loop gap printed (< 1 ms)"), printed with its target,
    # not a pass/fail criterion: this kernel has no IRQ time accounting, so softirq work of the load's
    # own packets that lands while a worker is between batches is charged to the worker, and a's (no
    # storm) figure in the same run shows that share.
    stall = (counters.get("b") or {}).get("stall_ms")
    if stall is not None:
        figures += "; stall target < 1 ms: " + ("met" if stall < 1 else f"NOT met ({stall} ms)")
    if why:
        c.fail(f"{'; '.join(why)}: {figures}")
    else:
        net.info(figures)
    stop_espds(net, c, hosts=("a",))
    stop_espds(net, c, hosts=("b",), timeout=60)
    c.done()


@named("args", {"storm": (), "storm-workers": WORKERS})
def test_storm(net, release_espd, storm_tunnels, args):
    net.espd_binary = release_espd  # the release binary; b loads the storm's tunnels
    retry_once(net, lambda: storm(net, args, storm_tunnels))
