"""A soak under churn (was scripts/soak.sh): a gateway and three clients behind one NAT, for
$SOAK_MINUTES (default 1; 10 is the full one), with all of this at once:
  load       iperf3 UDP through every tunnel for the whole run: c1 and c2 send to the gateway
             ($SOAK_RATE Mbit/s each, default 50, 1000-byte datagrams), c3 both ways (--bidir, half
             the rate each way). c1 and c2 send one way because packets the gateway sends to a NAT
             mapping that has just gone are lost to the rebinding itself, not to espd; c3 is not
             rebound
  rekeys     every client's SAs rekeyed hitlessly in both directions every 2 s (control.py
             rekey-loop: new inbound on both ends, then the outbound switches, old SAs deleted)
  churn      50 tunnels added to the gateway and deleted again, round after round
  rebinding  every 30 s the NAT moves c1 and c2 to new ports (new masquerade range, their conntrack
             entries deleted); the gateway must follow from authenticated packets
At the end it checks, and prints:
  - zero packets lost to espd: no espd dropped a packet (no replay, authentication failure, unknown
    SPI, packet outside the window, or any other drop reason) and none was refused by its TUN or UDP
    socket; every packet iperf3 reports lost must be one the receiver's own kernel counted as
    arriving to a full socket buffer (iperf3 asks for 4 MB; on two shared vCPUs a receiver
    sometimes falls behind)
  - resident memory flat after warm-up: each espd's RSS is sampled every 15 s into rss.tsv; the end
    is within 8 MB of the sample after warm-up (first minute, or a fifth of the run if shorter)
  - no file descriptor leak: each espd holds as many descriptors at the end, once the control
    clients have gone, as at the start before they came
  - the rekeys, churn rounds and rebinds really happened, and every espd exits 0 on SIGTERM

    sudo ESPD=.build/release/espd SOAK_MINUTES=10 python3 -m pytest -q -s -rxXs -m soak tests/live
"""

import json
import os
import re
import time

import pytest

from livebench import columns
from livecontrol import Checks, ctl, ctl_bg, fds, finished, jload, last_json, named, stop_espds
from livenet import GW_INNER
from liveproc import wait_for

pytestmark = pytest.mark.soak

HOSTS = ("gw", "c1", "c2", "c3")


def soak_settings():
    """(minutes, rate) from $SOAK_MINUTES (default 1, a positive number) and $SOAK_RATE (default 50,
    an integer of at least 2, Mbit/s)."""
    minutes, rate = os.environ.get("SOAK_MINUTES", "1"), os.environ.get("SOAK_RATE", "50")
    assert re.fullmatch(r"[0-9]+", rate) and int(rate) >= 2, (
        f"SOAK_RATE must be an integer of at least 2 (Mbit/s), got {rate!r}"
    )
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)?", minutes) and float(minutes) > 0, (
        f"SOAK_MINUTES must be a positive number, got {minutes!r}"
    )
    return minutes, int(rate)


class RssLog:
    """rss.tsv: one line of RSS (kB) per host each sample."""

    def __init__(self, path, espds):
        self.path, self.espds = path, espds
        with open(path, "w") as f:
            f.write("\t".join(("seconds", *HOSTS)) + "\n")

    def sample(self, now):
        row = [str(now)] + [str(self.espds[h].memory()[0]) for h in HOSTS]
        with open(self.path, "a") as f:
            f.write("\t".join(row) + "\n")

    def table(self):
        """The header, the first sample and the last, in columns."""
        with open(self.path) as f:
            rows = [line.split("\t") for line in f.read().splitlines()]
        return columns(rows[:2] + rows[-1:] if len(rows) > 2 else rows)


def flow_counts(path):
    """(lost, packets) of an iperf3 UDP run's JSON, both directions (lost -1: no result)."""
    end = jload(open(path, errors="replace").read() if os.path.exists(path) else "").get("end", {})
    lost = end.get("sum", {}).get("lost_packets", -1) + end.get("sum_bidir_reverse", {}).get(
        "lost_packets", 0
    )
    packets = end.get("sum", {}).get("packets", 0) + end.get("sum_bidir_reverse", {}).get("packets", 0)
    return lost, packets


def stats_of(c, e):
    """A fresh stats line of espd e (False, recorded as a failure, when there is none)."""
    try:
        e.stats()
        return True
    except AssertionError as err:
        c.fail(str(err))
        return False


@named("name", {"soak": "soak"})
def test_soak(net, name):
    minutes, rate = soak_settings()
    secs = int(float(minutes) * 60)
    warm = min(secs // 5, 60)
    c = Checks()
    d = net.configs("nat", "--clients", 3, "--inner", "4,6")
    topo = net.nat(3)
    topo.remap(flush=False)
    espds = {h: net.espd(h, d) for h in HOSTS}
    net.info(
        f"soak: {minutes} min ({secs} s, warm-up {warm}s), espd {net.session.espd_source}, "
        f"{rate} Mbit/s per one-way flow; work dir {net.dir}"
    )
    # Descriptors before any control client connects: the end, after they all left, must match.
    fd0 = {h: fds(espds[h].pid) for h in HOSTS}
    # The receivers' kernels count what their sockets had no room for (iperf3's own buffers, 4 MB):
    # a packet iperf3 reports lost must be there, not in espd.
    rb0 = net.ns("gw").udp_rcvbuf_errors() + net.ns("c3").udp_rcvbuf_errors()

    # Load: one iperf3 server per client on the gateway's inner address.
    for i in (1, 2, 3):
        net.bg(f"iperf-s{i}", "gw", ["iperf3", "-s", "-1", "-p", str(5200 + i), "-B", GW_INNER])
    for i in (1, 2, 3):
        wait_for(lambda i=i: net.ns("gw").tcp_listening(5200 + i), 5, what=f"iperf3 server {i}")
    procs = {}
    for i, r, extra in ((1, rate, ()), (2, rate, ()), (3, rate // 2, ("--bidir",))):
        argv = ["iperf3", "-c", GW_INNER, "-p", str(5200 + i), "-u", "-b", f"{r}M", "-l", "1000", "-w", "4M"]
        argv += ["-t", str(secs), *extra, "-J", "--connect-timeout", "3000"]
        procs[f"iperf-c{i}"] = net.bg(f"iperf-c{i}", f"c{i}", argv)
    # Rekeys, churn.
    for i in (1, 2, 3):
        procs[f"rekey-c{i}"] = ctl_bg(
            net, f"rekey-c{i}", "gw", "rekey-loop", "--a", d.control("gw"), "--b", d.control(f"c{i}"),
            "--tunnel-a", f"c{i}", "--tunnel-b", "gw", "--seconds", secs - 5, "--interval", 2,
        )  # fmt: skip
    procs["churn"] = ctl_bg(
        net, "churn", "gw", "churn-loop", "--sock", d.control("gw"), "--count", 50, "--seconds", secs - 5
    )

    # Memory sampled every 15 s; NAT rebinding every 30 s.
    rss = RssLog(net.log("rss.tsv"), espds)
    rss0 = {}
    t0 = time.monotonic()
    rebinds, next_sample, next_rebind, warmed = 0, 0, 30, False
    while (now := int(time.monotonic() - t0)) < secs:
        if now >= next_sample:
            rss.sample(now)
            next_sample += 15
        if not warmed and now >= warm:
            warmed = True
            rss.sample(now)
            rss0 = {h: espds[h].memory()[0] for h in HOSTS}
            line = "".join(
                f" {h} {rss0[h]} kB ({fds(espds[h].pid)} descriptors with the control clients)" for h in HOSTS
            )
            print(f"warmed up:{line}")
        if now >= next_rebind and now < secs - 10:
            first = 40000 if rebinds % 2 == 0 else 41000
            try:
                topo.remap(f"{first}-{first + 100}", flush=False)
            except RuntimeError:
                c.fail("nft: cannot change the masquerade rule")
            for src in ("203.0.113.10", "203.0.113.11"):
                net.ns("nat").exec(["conntrack", "-D", "-s", src], check=False)
            rebinds, next_rebind = rebinds + 1, next_rebind + 30
        for h in HOSTS:
            assert espds[h].alive(), f"espd-{h} died: {espds[h].why(3)}"
        time.sleep(1)
    print("load done; waiting for the flows, rekeys and churn to finish")
    for n, p in procs.items():
        try:
            rc = finished(p, 60, f"{n} did not finish")
        except AssertionError as e:
            c.fail(str(e))
            continue
        c.check(
            rc == 0,
            lambda n=n, rc=rc: f"{n} exited {rc}: {net.tail(n + '.err', 2)} {net.tail(n + '.out', 1)}",
        )
    time.sleep(2)  # control connections of the loops above close
    rss.sample(int(time.monotonic() - t0))
    fd1 = {h: fds(espds[h].pid) for h in HOSTS}
    rss1 = {h: espds[h].memory()[0] for h in HOSTS}

    # --- checks
    lost = 0
    for i in (1, 2, 3):
        n_lost, n = flow_counts(net.log(f"iperf-c{i}.out"))
        print(f"flow c{i}: {n} packets, {n_lost} lost")
        c.check(n_lost >= 0 and n > 0, f"flow c{i}: no iperf3 result ({net.tail(f'iperf-c{i}.err', 1)})")
        lost += max(n_lost, 0)
    rb = net.ns("gw").udp_rcvbuf_errors() + net.ns("c3").udp_rcvbuf_errors() - rb0
    # espd's own losses: every drop reason, and what the TUN or the UDP socket would not take.
    espd_lost = 0
    for h in HOSTS:
        if not stats_of(c, espds[h]):
            continue
        for k in ("dropped", "tun_write_dropped", "udp_send_dropped", "offload_dropped"):
            v = espds[h].counter(k)
            v = -1 if v is None else v
            if not c.check(v == 0, f"espd-{h} counted {k} = {v}"):
                espd_lost += abs(v)
    net.info(
        f"packets lost: {lost} in all; the receivers' kernels counted {rb} datagrams their sockets had no "
        f"room for; espd lost {espd_lost}"
    )
    c.check(lost <= rb, f"{lost} packets lost, {lost - rb} of them not in a receiver's socket buffer")
    rekeys = sum(last_json(net.log(f"rekey-c{i}.out")).get("rekeys", 0) or 0 for i in (1, 2, 3))
    churn = last_json(net.log("churn.out"))
    churn_text = json.dumps(churn, separators=(",", ":"))
    c.check(rekeys >= 3 * (secs // 2) * 3 // 4, f"only {rekeys} rekeys in {secs}s (3 tunnels, every 2 s)")
    c.check((churn.get("rounds") or 0) >= 1, f"no churn round finished: {churn_text}")
    for h in HOSTS:
        if not stats_of(c, espds[h]):
            continue
        for k in ("replayed", "auth_failed", "unknown_spi", "outside_window"):
            v = espds[h].counter(k)
            c.check(v == 0, f"espd-{h} counted {k} = {'missing' if v is None else v}")
    moves, moves3 = [], None
    p = ctl(net, "list", "request", d.control("gw"), '{"op":"list"}', check=False)
    answer = jload(p.stdout)
    if p.returncode == 0 and answer.get("ok"):
        tunnels = answer["tunnels"]
        moves = [t["counters"]["endpoint_changes"] for t in tunnels if t["name"] in ("c1", "c2")]
        moves3 = next((t["counters"]["endpoint_changes"] for t in tunnels if t["name"] == "c3"), None)
    else:
        c.fail(f"list on the gateway failed: {(p.stdout + p.stderr)[-200:]}")
    # Each rebind gives c1 and c2 a port from the other range: the gateway must follow every one.
    c.check(len(moves) == 2, "no endpoint_changes for c1 and c2 in the gateway's list")
    for m in moves:
        c.check(
            m == rebinds,
            f"the gateway followed c1/c2 {' '.join(map(str, moves))} times over {rebinds} rebinds",
        )
    c.check(moves3 == 0, f"c3 was not rebound, yet its endpoint moved {moves3} times")
    net.info(
        f"rekeys: {rekeys}; churn: {churn_text}; NAT rebinds: {rebinds} (gateway followed c1 c2: "
        f"{' '.join(map(str, moves))} times; "
        f"c3: {moves3})"
    )
    for h in HOSTS:
        grew = rss1[h] - rss0.get(h, 0)
        net.info(
            f"espd-{h}: RSS {rss0.get(h)} kB after warm-up -> {rss1[h]} kB at the end ({grew} kB); "
            f"descriptors {fd0[h]} at the start -> {fd1[h]} at the end"
        )
        c.check(grew < 8192, f"espd-{h} grew by {grew} kB after warm-up")
        c.check(fd1[h] == fd0[h], f"espd-{h} holds {fd1[h]} descriptors at the end, {fd0[h]} at the start")
    print(f"RSS samples (kB): {rss.path}\n{rss.table()}")
    stop_espds(net, c, hosts=HOSTS, timeout=5)
    c.done()
    net.info(
        f"soak: PASSED: {minutes} min, 0 packets lost by espd ({lost} lost in the receivers' socket "
        f"buffers), {rekeys} rekeys, {churn.get('rounds')} churn rounds of 50 tunnels, {rebinds} NAT "
        "rebinds; RSS flat, no descriptor leak"
    )
