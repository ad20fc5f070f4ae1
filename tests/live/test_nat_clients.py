"""Many clients behind one NAT, live (was scripts/nat-test.sh): a gateway, a NAT router (nftables
masquerade) and three clients, all running espd in network namespaces. The SAref problem, solved in
userspace:
  tunnel-mode      every client its own inner address; ping + iperf3 + tagged UDP at once; every reply
                   reaches its client; the gateway's per-tunnel counters show each client's share
  transport-alias  identical inner flows (udp and tcp 198.51.100.50:1701 -> 198.51.100.1:1701 on every
                   client, as Windows L2TP does); the gateway sees each client under its own alias
  shared-alias     one alias for all; distinct inner source ports steered by the learned flow table;
                   a reply to a port never seen reaches nobody (no_route)
  rebinding        the NAT's mapping changes mid-flow (masquerade to :40000-40100 + conntrack -F):
                   traffic resumes with the next authenticated packet, nothing goes to a stale port
  forgery          bad-ICV and replayed copies of real ESP from other addresses: counted, no endpoint
                   moves, the tunnel keeps working
  client-restart   one client restarts with new SAs and a new port, the gateway takes them by SIGHUP;
                   the other clients' streams lose nothing
  reload-shared-alias  the same with one shared alias (L2TP): the gateway's own streams to the other
                   clients, steered by learned flows, lose nothing across the reload
  scale-10k        10,000 tunnels on the gateway, traffic from three: start-up time, memory, reload time
The *-workers variants run the gateway with --workers 2 and check its exit line (two workers,
nothing lost between them). Each bash test NAME is the pytest id (test_tunnel_mode[tunnel-mode-workers]).

    sudo ESPD=.build/debug/espd python3 -m pytest -q -rxXs -m nat tests/live
"""

import json
import os
import signal
import sys
import time

import pytest

from livechecks import (
    echo_bg,
    flow_bg,
    flow_ok,
    flow_summary,
    flow_wait,
    iperf_bg,
    iperf_done,
    json_lines,
    kdrops,
    named,
    ping_ok,
    preflight,
    route_ok,
    snap,
    snap_until,
    tshark_fields,
)
from livechecks import stop as _stop
from liveconfigs import CONFIGS_PY, Configs, configs_py
from livenet import Capture
from liveproc import run, wait_exit, wait_for

pytestmark = pytest.mark.nat

NAT, GW, G4, G6 = "192.0.2.2", "192.0.2.1", "198.51.100.1", "2001:db8:100::1"
TCLIENT = "198.51.100.50"  # transport mode: every client's TUN address
BUDGET = float(os.environ.get("NAT_TEST_BUDGET", 225))  # seconds: a test that would start later fails
WORKERS = ("--workers", "2")
_started = []


@pytest.fixture(autouse=True)
def budget():
    """The suite's time budget (NAT_TEST_BUDGET, default 225 s), from its first test on."""
    if not _started:
        _started.append(time.monotonic())
    spent = time.monotonic() - _started[0]
    assert spent <= BUDGET, f"not run: the suite is past its {BUDGET:.0f}s budget"


def stop(net, host, timeout=3):
    """SIGTERM: exit 0 in time, no TUN left (nat-test did not ask for the final stats line)."""
    _stop(net, host, timeout, final_stats=False, report=False)


def stop_all(net, *hosts):
    for h in hosts:
        stop(net, h)


def nat_up(net, cfg, n, gw_args=()):
    """The nat topology (masquerade for the LAN only), espd on gw (GW_ARGS) and c1..cN."""
    topo = net.nat(n)
    topo.remap(flush=False)
    net.espd("gw", cfg, *gw_args)
    for i in range(1, n + 1):
        net.espd(f"c{i}", cfg)
    return topo


def nat_only(net, n):
    topo = net.nat(n)
    topo.remap(flush=False)
    return topo


def check_workers(net, tunnel_mode=False):
    """The gateway's exit line on two workers: both busy, nothing lost between them."""
    lines = net.espds["espd-gw"].stats_lines()
    assert lines, "espd-gw printed no stats at exit"
    last = json.loads(lines[-1])["stats"]
    assert len(last.get("workers", [])) == 2, "espd-gw: stats do not show 2 workers"
    assert last.get("handoff_dropped") == 0, f"espd-gw: handoff_dropped = {last.get('handoff_dropped')}"
    net.info(f"gw workers: {json.dumps(last['workers'])}, handed over {last.get('handoff_packets')}")
    if tunnel_mode:
        # steering by SPI (eBPF on the SO_REUSEPORT group) delivers each client's datagrams to its
        # owner's socket, and the TUN's queue steering brings replies back to the owner: under 5% of
        # the packets change workers (without the eBPF program, about half of the inbound ones did)
        total = sum(w["packets"] for w in last["workers"])
        assert last["handoff_packets"] * 20 < total, (
            f"espd-gw handed over {last['handoff_packets']} of {total} packets"
        )
        assert "inbound steering: SPI" in net.read("espd-gw.err"), (
            "espd-gw did not attach the SPI steering program"
        )


def echo_pairs(net, name, with_port=False):
    """The (source, tag) pairs an echo-tag server saw, sorted, joined by commas."""
    pairs = set()
    for e in json_lines(net, name, "request"):
        src = f"{e['from']}:{e['port']}" if with_port else e["from"]
        pairs.add(f"{src} {e['text'].split(':')[0]}")
    return ",".join(sorted(pairs))


# ------------------------------------------------------------------ tests


@named("preflight")
def test_preflight(net, name):
    preflight(net)


@named("configs")
def test_configs(net, name):
    """Every layout this suite uses passes `espd check`; rekey touches one tunnel only."""
    tunnel = net.configs("nat", "--clients", 3, "--inner", 4, name="tunnel")
    transport = net.configs("nat", "--mode", "transport", "--clients", 3, name="transport")
    shared = net.configs("nat", "--mode", "transport", "--alias", "shared", "--clients", 3, name="shared")
    aliases = [t.get("alias") for t in transport.load("gw")["tunnels"]]
    assert aliases == ["198.51.100.131", "198.51.100.132", "198.51.100.133"], (
        "transport: gateway aliases are not .131/.132/.133"
    )
    assert sorted({t.get("alias") for t in shared.load("gw")["tunnels"]}) == ["198.51.100.130"], (
        "shared: not one alias"
    )
    before = tunnel.load("gw")
    configs_py("rekey", tunnel.dir, "--host", "c2", "--port", 4501)
    after, c2 = tunnel.load("gw"), tunnel.load("c2")
    b, a = before["tunnels"], after["tunnels"]
    assert (
        b[0] == a[0]
        and b[2] == a[2]
        and b[1]["inbound"] != a[1]["inbound"]
        and b[1]["outbound"] != a[1]["outbound"]
    ), "rekey changed more (or less) than tunnel c2 of gw.json"

    def no_window(sa):
        return {k: v for k, v in sa.items() if k != "replay_window"}

    ct = c2["tunnels"][0]
    assert (
        a[1]["outbound"] == no_window(ct["inbound"][0])
        and ct["outbound"] == no_window(a[1]["inbound"][0])
        and c2["listen"] == ["203.0.113.11:4501"]
    ), "rekey: c2 and gw SAs do not pair up, or c2's port"
    p = run(
        [sys.executable, CONFIGS_PY, "check", tunnel.dir, "--espd", net.espd_binary], check=False, timeout=120
    )
    assert p.returncode == 0, "espd check rejects the rekeyed configs"
    net.info("tunnel, transport (3 aliases), shared alias and rekeyed configs pass espd check")


# 1. Tunnel mode: three clients with their own inner addresses, everything at once.
@pytest.mark.parametrize(
    "workers", [pytest.param(False, id="tunnel-mode"), pytest.param(True, id="tunnel-mode-workers")]
)
def test_tunnel_mode(net, workers):
    cfg = net.configs("nat", "--clients", 3, "--inner", 4)
    nat_up(net, cfg, 3, WORKERS if workers else ())
    for i in (1, 2, 3):
        route_ok(net, "gw", f"198.51.100.{9 + i}")
    echo_bg(net, "echo", "gw", G4, 7000, "udp", 25)
    # TCP paced at 100 Mbit/s per client: three bulk flows at once, below what a debug build forwards
    # on two cores, so that a lost datagram means a fault, not a full queue
    for i in (1, 2, 3):
        iperf_bg(net, f"iperf-c{i}", "gw", f"c{i}", G4, 5200 + i, 3, "-b", "100M")
    for i in (1, 2, 3):
        a = f"198.51.100.{9 + i}"
        net.tool_bg(f"ping-c{i}", f"c{i}", "ping", "-c", 40, "-i", 0.05, "-W", 1, G4)
        flow_bg(
            net,
            f"flow-c{i}",
            f"c{i}",
            f"--to {G4} --port 7000 --tag c{i} --count 150 --interval 0.02 --expect-from {a} --linger 2",
        )
    flow_wait(net, 15, "flow-c1", "flow-c2", "flow-c3", "ping-c1", "ping-c2", "ping-c3")
    shares, got = [], {}
    for i in (1, 2, 3):
        got[i], rate = iperf_done(net, f"iperf-c{i}")
        shares.append(f"c{i} iperf3 {rate}")
    fails = []
    for i in (1, 2, 3):
        try:
            flow_ok(net, f"flow-c{i}", 0)
        except AssertionError as e:
            fails.append(str(e))
        out = net.read(f"ping-c{i}.out")
        if ": 40 sent, 40 received" not in out:
            fails.append(f"ping c{i} -> {G4} under load: {(out.strip().splitlines() or [''])[-1]}")
    if fails:
        drops = "; ".join(kdrops(net, h) for h in ("gw", "c1", "c2", "c3"))
        raise AssertionError(f"{'; '.join(fails)}; kernel drops: {drops}")
    # the echo server saw exactly the three inner addresses, each with its own tag only
    pairs = echo_pairs(net, "echo")
    assert pairs == "198.51.100.10 c1,198.51.100.11 c2,198.51.100.12 c3", (
        f"gateway echo saw (source, tag) pairs: {pairs}"
    )
    gw = snap(net, "gw", "after")
    cs = {i: snap(net, f"c{i}", "after") for i in (1, 2, 3)}
    for i in (1, 2, 3):
        t, ct = gw["by"][f"c{i}"], cs[i]["by"]["gw"]
        pin, pout, bin_ = t["packets_in"], t["packets_out"], t["bytes_in"]
        cout, cin = ct["packets_out"], ct["packets_in"]
        # each tunnel's share: what this client sent (minus what the kernel may drop under iperf3 load)
        assert pin >= 190 and pin <= cout and pin * 100 >= cout * 95, (
            f"gateway tunnel c{i}: packets_in {pin}, but c{i} sent {cout} (expected >= 190, within 95%)"
        )
        assert cin <= pout and cin >= 190, f"gateway tunnel c{i}: packets_out {pout}, but c{i} received {cin}"
        assert bin_ >= got[i], (
            f"gateway tunnel c{i}: bytes_in {bin_} < the {got[i]} bytes iperf3 received from c{i}"
        )
        assert cs[i].drops("unknown_spi", "auth_failed", "selector_mismatch") == 0, (
            f"c{i} drops: {cs[i].nonzero_drops()}"
        )
        shares.append(f"gw tunnel c{i}: {pin} pkts/{bin_ // 1048576} MiB in, {pout} pkts out")
    assert gw.drops("unknown_spi", "auth_failed", "selector_mismatch", "no_peer") == 0, (
        f"gateway drops: {gw.nonzero_drops()}"
    )
    peers = [t["peer"] for t in gw["by"].values()]
    assert len(set(peers)) == 3, f"gateway peers not distinct: {peers}"
    for sh in shares:
        net.info(sh)
    net.info(
        "ping 3 x 40/40 under load; UDP 3 x 150/150, each reply naming its own client; "
        f"peers {' '.join(peers)}"
    )
    stop_all(net, "c1", "c2", "c3", "gw")
    if workers:
        check_workers(net, tunnel_mode=True)


# 2. Transport mode, one alias per client on the gateway, identical inner flows on every client.
@pytest.mark.parametrize("name", ["transport-alias"])
def test_transport_alias(net, name):
    cfg = net.configs("nat", "--mode", "transport", "--clients", 3)
    nat_up(net, cfg, 3)
    for i in (1, 2, 3):
        route_ok(net, f"c{i}", G4)
        route_ok(net, "gw", f"198.51.100.{130 + i}")
    echo_bg(net, "echo-udp", "gw", G4, 1701, "udp", 25)
    echo_bg(net, "echo-tcp", "gw", G4, 1701, "tcp", 25)
    for i in (1, 2, 3):  # all at once: udp 198.51.100.50:1701 -> 198.51.100.1:1701, and tcp on the same ports
        exp = f"198.51.100.{130 + i}:1701"
        flow_bg(
            net,
            f"udp-c{i}",
            f"c{i}",
            f"--to {G4} --port 1701 --bind {TCLIENT} --sport 1701 --tag c{i} --count 150 --interval "
            f"0.02 --expect-from {exp} --linger 2",
        )
        flow_bg(
            net,
            f"tcp-c{i}",
            f"c{i}",
            f"--proto tcp --to {G4} --port 1701 --bind {TCLIENT} --sport 1701 --tag c{i} --count 100 "
            f"--interval 0.02 --expect-from {exp} --linger 2",
        )
    flow_wait(net, 15, "udp-c1", "udp-c2", "udp-c3", "tcp-c1", "tcp-c2", "tcp-c3")
    for i in (1, 2, 3):
        flow_ok(net, f"udp-c{i}", 0)
        flow_ok(net, f"tcp-c{i}", 0)
    want = "198.51.100.131:1701 c1,198.51.100.132:1701 c2,198.51.100.133:1701 c3"
    pairs = echo_pairs(net, "echo-udp", with_port=True)
    assert pairs == want, f"UDP service saw (source, tag) pairs: {pairs} (want {want})"
    pairs = echo_pairs(net, "echo-tcp", with_port=True)
    assert pairs == want, f"TCP service saw (source, tag) pairs: {pairs} (want {want})"
    # bulk TCP through the three aliases at once
    rates = []
    for i in (1, 2, 3):
        iperf_bg(net, f"iperf-c{i}", "gw", f"c{i}", G4, 5200 + i, 2)
    for i in (1, 2, 3):
        rates.append(f"c{i} {iperf_done(net, f'iperf-c{i}')[1]}")
    gw = snap(net, "gw", "after")
    for i in (1, 2, 3):
        n = gw.t(f"c{i}", "packets_in")
        assert n >= 250, f"gateway tunnel c{i}: packets_in {n}"
    assert gw.drops("unknown_spi", "auth_failed", "no_route", "malformed") == 0, (
        f"gateway drops: {gw.nonzero_drops()}"
    )
    net.info(
        f"3 x (150 udp + 100 tcp) 198.51.100.50:1701 -> {G4}:1701, each seen as its alias, "
        "replies only to their own client"
    )
    net.info(f"iperf3 tcp via aliases at once: {' '.join(rates)}")
    stop_all(net, "c1", "c2", "c3", "gw")


# 3. Transport mode, one shared alias: the learned flow table steers replies by inner source port.
@pytest.mark.parametrize(
    "workers", [pytest.param(False, id="shared-alias"), pytest.param(True, id="shared-alias-workers")]
)
def test_shared_alias(net, workers):
    alias = "198.51.100.130"
    cfg = net.configs("nat", "--mode", "transport", "--alias", "shared", "--clients", 3)
    nat_up(net, cfg, 3, WORKERS if workers else ())
    route_ok(net, "gw", alias)
    echo_bg(net, "echo", "gw", G4, 1701, "udp", 25)
    for i in (1, 2, 3):
        flow_bg(
            net,
            f"udp-c{i}",
            f"c{i}",
            f"--to {G4} --port 1701 --bind {TCLIENT} --sport {1700 + i} --tag c{i} --count 150 "
            f"--interval 0.02 --expect-from {alias}:{1700 + i} --linger 2",
        )
    flow_wait(net, 12, "udp-c1", "udp-c2", "udp-c3")
    for i in (1, 2, 3):
        flow_ok(net, f"udp-c{i}", 0)
    want = f"{alias}:1701 c1,{alias}:1702 c2,{alias}:1703 c3"
    pairs = echo_pairs(net, "echo", with_port=True)
    assert pairs == want, f"UDP service saw (source, tag) pairs: {pairs} (want {want})"
    # a reply to a port no client ever used, and ICMP (no ports): no tunnel, counted no_route
    gw0 = snap(net, "gw", "before")
    c0 = {i: snap(net, f"c{i}", "before") for i in (1, 2, 3)}
    for i in (1, 2, 3):
        net.tool_bg(f"sink-c{i}", f"c{i}", f"udp-server --bind {TCLIENT} --port 1799 --count 1 --timeout 2")
    for i in (1, 2, 3):
        try:
            wait_for(lambda i=i: net.ns(f"c{i}").udp_bound(1799), 3, what="the sink")
        except TimeoutError:
            raise AssertionError(f"sink on c{i} did not start") from None
    net.ns("gw").tool(f"udp-client --to {alias} --port 1799 --sport 1790 --payload stray --count 5 --no-echo")
    p = net.ns("gw").tool("ping", "-c", 3, "-i", 0.05, "-W", 0.3, alias)
    assert p.returncode != 0, (
        f"ping {alias} from the gateway got a reply (ICMP has no ports: it cannot be steered)"
    )
    for i in (1, 2, 3):
        wait_exit(net.bgs[f"sink-c{i}"], 4)
        assert '"datagram"' not in net.read(f"sink-c{i}.out"), (
            f"c{i} received a reply to port 1799, which it never used"
        )
    gw1 = snap(net, "gw", "after")
    c1 = {i: snap(net, f"c{i}", "after") for i in (1, 2, 3)}
    nr = gw1["drops"]["no_route"] - gw0["drops"]["no_route"]
    assert nr >= 8, f"gateway no_route went up by {nr}, expected >= 8 (5 datagrams + 3 pings)"
    for i in (1, 2, 3):
        assert c1[i]["decapsulated"] == c0[i]["decapsulated"], (
            f"c{i} decapsulated something after the stray replies"
        )
        assert gw1.t(f"c{i}", "packets_out") == gw0.t(f"c{i}", "packets_out"), (
            f"gateway sent stray packets into tunnel c{i}"
        )
    net.info(
        "flows 130:1701/1702/1703 -> c1/c2/c3, 3 x 150 replies each to its own client; "
        f"port 1799 and ICMP: no_route +{nr}, delivered to nobody"
    )
    stop_all(net, "c1", "c2", "c3", "gw")
    if workers:
        check_workers(net)


# 4. NAT rebinding: the NAT remaps every client mid-flow.
@pytest.mark.parametrize(
    "workers", [pytest.param(False, id="rebinding"), pytest.param(True, id="rebinding-workers")]
)
def test_rebinding(net, workers):
    cfg = net.configs("nat", "--clients", 3, "--inner", 4)
    topo = nat_only(net, 3)
    cap = Capture(net.ns("gw"), "ul0", net.log("ul.pcapng"), net.procs, bpf="udp port 4500")
    net.espd("gw", cfg, *(WORKERS if workers else ()))
    for i in (1, 2, 3):
        net.espd(f"c{i}", cfg)
    for i in (1, 2, 3):
        ping_ok(net, f"c{i}", G4, "-c", 1)
    gw0 = snap(net, "gw", "before")
    echo_bg(net, "echo", "gw", G4, 7000, "udp", 25)
    for i in (1, 2, 3):
        flow_bg(
            net,
            f"flow-c{i}",
            f"c{i}",
            f"--to {G4} --port 7000 --tag c{i} --count 200 --interval 0.02 --expect-from "
            f"198.51.100.{9 + i} --linger 2",
        )
    time.sleep(1.5)
    t_remap = time.time()
    topo.remap("40000-40100", flush=False)
    p = topo.nat.exec(["conntrack", "-F"], check=False)
    assert p.returncode == 0, "conntrack -F failed in the NAT namespace"
    flow_wait(net, 15, "flow-c1", "flow-c2", "flow-c3")
    gw1 = snap(net, "gw", "after")
    cap.stop(margin=1)
    lost = []
    for i in (1, 2, 3):
        # at most the replies already in flight to the old mapping when it vanished
        lost.append(f"c{i} {flow_ok(net, f'flow-c{i}', 2)['lost']}")
    fields = ("frame.number", "frame.time_epoch", "ip.src", "udp.srcport", "ip.dst", "udp.dstport", "esp.spi")
    rows = tshark_fields(cap, "esp", *fields, "esp.sequence")
    with open(net.log("esp.tsv"), "w") as f:
        f.write("".join("\t".join(r) + "\n" for r in rows))
    summary = []
    for i in (1, 2, 3):
        old, new, ch = gw0.t(f"c{i}", "peer"), gw1.t(f"c{i}", "peer"), gw1.t(f"c{i}", "endpoint_changes")
        oldp, newp = old.rsplit(":", 1)[1], new.rsplit(":", 1)[1]
        assert new.rsplit(":", 1)[0] == NAT and old.rsplit(":", 1)[0] == NAT, (
            f"c{i}: gateway peer {old} -> {new}, expected {NAT} on both"
        )
        assert 40000 <= int(newp) <= 40100, (
            f"c{i}: gateway peer port after the remap is {newp}, not in 40000-40100"
        )
        assert ch >= 1, f"c{i}: endpoint_changes = {ch} after the remap"
        spi_in = cfg.hosts["gw"]["tunnels"][i - 1]["spi_in"]
        spi_out = cfg.hosts["gw"]["tunnels"][i - 1]["spi_out"]
        # after the first packet from the new port: nothing to the old port; how soon the new port got a reply
        first = tfirst = stale1 = reply = treply = None
        stale = between = 0
        for r in rows:
            num, tm, src, sport, dst, dport, spi = r[:7]
            spi = spi.lower()
            if spi == spi_in and src == NAT and sport == newp and first is None:
                first, tfirst = num, float(tm)
            if spi == spi_out and src == GW and dst == NAT and dport == oldp:
                if first is not None:
                    stale += 1
                    stale1 = stale1 or num
                elif float(tm) >= t_remap:
                    between += 1
            if (
                spi == spi_out
                and src == GW
                and dst == NAT
                and dport == newp
                and first is not None
                and reply is None
            ):
                reply, treply = num, float(tm)
        assert first is not None, f"c{i}: no ESP from {NAT}:{newp} in the capture"
        assert stale == 0, (
            f"c{i}: {stale} ESP packets to the stale {NAT}:{oldp} after the first packet from :{newp} "
            f"(frame {first}), first at frame {stale1}"
        )
        assert reply is not None, f"c{i}: nothing sent to the new port {newp}"
        resume_ms = (treply - tfirst) * 1000
        assert 0 <= resume_ms <= 200, (
            f"c{i}: the first reply to the new port left {resume_ms:.2f} ms after the first packet "
            "from it (want <= 200)"
        )
        summary.append(
            f"c{i} {oldp}->{newp} (endpoint_changes {ch}; replied {resume_ms:.2f} ms after its first "
            "packet from "
            f"the new port; {between} sent to the old port after the remap began, none after the new "
            "port was seen)"
        )
    for x in summary:
        net.info(x)
    net.info(
        f"replies lost across the remap: {' '.join(lost)} (at most the replies in flight to the "
        "vanished mapping)"
    )
    stop_all(net, "c1", "c2", "c3", "gw")
    if workers:
        check_workers(net)


# 5. Forgery: a bad ICV and replays of real packets, from addresses that are not the peer.
@named("forgery")
def test_forgery(net, name):
    evil = "192.0.2.66"
    cfg = net.configs("nat", "--clients", 3, "--inner", 4)
    topo = nat_only(net, 3)
    topo.nat.addr("wan0", f"{evil}/24")
    real = Capture(net.ns("gw"), "ul0", net.log("real.pcapng"), net.procs, bpf="udp port 4500")
    net.espd("gw", cfg)
    for i in (1, 2, 3):
        net.espd(f"c{i}", cfg)
    ping_ok(net, "c1", G4, "-c", 5, "-i", 0.05)
    ping_ok(net, "c2", G4, "-c", 2, "-i", 0.05)
    ping_ok(net, "c3", G4, "-c", 2, "-i", 0.05)
    real.stop(margin=1)
    spi_in = cfg.hosts["gw"]["tunnels"][0]["spi_in"]
    rows = [
        r
        for r in tshark_fields(real, f"esp && ip.dst == {GW}", "esp.spi", "esp.sequence", "udp.payload")
        if r[0].lower() == spi_in
    ]
    assert len(rows) >= 5, f"only {len(rows)} ESP packets of c1 captured"
    maxseq = max(int(r[1]) for r in rows)
    last = rows[-1][2].replace(":", "")
    p1, p2, p3 = (r[2].replace(":", "") for r in rows[:3])
    gw0 = snap(net, "gw", "before")
    forged = Capture(net.ns("gw"), "ul0", net.log("forged.pcapng"), net.procs)
    nat = net.ns("nat")
    # (a) a real packet of c1, its last byte (ICV) flipped, with sequence numbers never seen and far
    #     ahead of the window (a forgery that moved the window would lock c1 out): auth_failed
    p = nat.tool(
        f"send-esp --bind {evil} --sport 4500 --to {GW} --hex {last} --seq {maxseq + 5000} "
        "--flip-last --count 3"
    )
    assert p.returncode == 0, f"send-esp (bad ICV) failed: {(p.stdout + p.stderr).strip()[-200:]}"
    # (b) exact copies of three delivered packets from another address, (c) two from the NAT's own address
    #     on another port: replayed
    p = nat.tool(f"send-esp --bind {evil} --sport 4500 --to {GW} --hex {p1} --hex {p2} --hex {p3}")
    assert p.returncode == 0, f"send-esp (replay) failed: {(p.stdout + p.stderr).strip()[-200:]}"
    p = nat.tool(f"send-esp --bind {NAT} --sport 5555 --to {GW} --hex {p1} --hex {last}")
    assert p.returncode == 0, f"send-esp (replay from {NAT}:5555) failed"

    # until all eight forgeries are counted (at most 3 s); the checks below say what was not
    def counted(s):
        return (
            s.t("c1", "drops")["auth_failed"] - gw0.t("c1", "drops")["auth_failed"] >= 3
            and s.t("c1", "drops")["replayed"] - gw0.t("c1", "drops")["replayed"] >= 5
        )

    gw1, _ = snap_until(net, "gw", "after", counted, 3)
    pb, pa = gw0.t("c1", "peer"), gw1.t("c1", "peer")
    cb, ca = gw0.t("c1", "endpoint_changes"), gw1.t("c1", "endpoint_changes")
    db, da = gw0.t("c1", "drops")["auth_failed"], gw1.t("c1", "drops")["auth_failed"]
    rb, ra = gw0.t("c1", "drops")["replayed"], gw1.t("c1", "drops")["replayed"]
    assert pa == pb, f"a forgery moved c1's endpoint: {pb} -> {pa}"
    assert ca == cb, f"endpoint_changes went {cb} -> {ca}"
    assert da - db == 3, f"tunnel c1 auth_failed went up by {da - db}, expected 3"
    assert ra - rb == 5, f"tunnel c1 replayed went up by {ra - rb}, expected 5"
    assert gw1["drops"]["auth_failed"] - gw0["drops"]["auth_failed"] == 3, (
        "global auth_failed did not go up by 3"
    )
    assert gw1.t("c2", "peer") == gw0.t("c2", "peer"), "c2's endpoint moved"
    assert gw1.t("c3", "peer") == gw0.t("c3", "peer"), "c3's endpoint moved"
    # the tunnel keeps working both ways, with the window where the real traffic left it
    ping_ok(net, "c1", G4, "-c", 5, "-i", 0.05)
    ping_ok(net, "gw", "198.51.100.10", "-c", 3, "-i", 0.05)
    ping_ok(net, "c2", G4, "-c", 2, "-i", 0.05)
    ping_ok(net, "c3", G4, "-c", 2, "-i", 0.05)
    end = snap(net, "gw", "end")
    assert end["drops"]["outside_window"] == 0, "real packets dropped outside_window after the forgeries"
    assert end.t("c1", "peer") == pb, f"c1's endpoint is {end.t('c1', 'peer')} after the forgeries, was {pb}"
    forged.stop(margin=1)
    n = forged.count(f"ip.src == {GW} && (ip.dst == {evil} || udp.dstport == 5555)")
    assert n == 0, f"the gateway sent {n} packets to a forger ({evil} or {NAT}:5555)"
    net.info(
        f"3 bad-ICV (seq {maxseq + 5000}+) from {evil}:4500 -> auth_failed +{da - db}; 5 replays from "
        f"{evil}:4500 "
        f"and {NAT}:5555 -> replayed +{ra - rb}; peer stays {pa}; nothing sent to the forgers; c1 "
        "still works both ways"
    )
    stop_all(net, "c1", "c2", "c3", "gw")


# 6. A client restarts behind the same NAT (new SAs, new port); the gateway takes them by SIGHUP.
@named("client-restart")
def test_client_restart(net, name):
    cfg = net.configs("nat", "--clients", 3, "--inner", 4)
    nat_only(net, 3)
    cap = Capture(net.ns("gw"), "ul0", net.log("ul.pcapng"), net.procs, bpf="udp port 4500 or udp port 4501")
    gw = net.espd("gw", cfg)
    for i in (1, 2, 3):
        net.espd(f"c{i}", cfg)
    for i in (1, 2, 3):
        ping_ok(net, f"c{i}", G4, "-c", 1)
    gw0 = snap(net, "gw", "before")
    echo_bg(net, "echo-gw", "gw", G4, 7000, "udp", 30)
    echo_bg(net, "echo-c3", "c3", "198.51.100.12", 7000, "udp", 30)
    # c2 -> gateway and c3 -> gateway (client-initiated), gateway -> c3 (gateway-initiated: needs the
    # learned peer of c3 to survive the reload)
    common = ("--port", 7000, "--count", 500, "--interval", 0.02, "--linger", 2)
    flow_bg(net, "flow-c2", "c2", "--to", G4, "--tag", "c2", "--expect-from", "198.51.100.11", *common)
    flow_bg(net, "flow-c3", "c3", "--to", G4, "--tag", "c3", "--expect-from", "198.51.100.12", *common)
    flow_bg(net, "flow-gw-c3", "gw", "--to", "198.51.100.12", "--tag", "gw", "--expect-from", G4, *common)
    time.sleep(1)
    # a broken file first: the reload must fail, change nothing, and stop nothing
    with open(cfg.path("gw")) as f:
        good = f.read()
    with open(cfg.path("gw"), "w") as f:
        f.write(good[:300])
    ok, line, _ = gw.reload(5)
    assert not ok, f"a truncated config reloaded: {line}"
    with open(cfg.path("gw"), "w") as f:
        f.write(good)
    # c1 goes down, comes back with new SAs on a new port
    stop(net, "c1")
    configs_py("rekey", cfg.dir, "--host", "c1", "--port", 4501)
    ok, line, reload_ms = gw.reload(5)
    assert ok, f"reload: espd espd-gw: {line}"
    # the gateway talks to c1 before c1 is back (it cannot know c1's new port yet)
    net.ns("gw").tool("ping", "-c", 1, "-W", 0.3, "198.51.100.10")
    net.espd("c1", cfg)
    ping_ok(net, "c1", G4, "-c", 3, "-i", 0.05)
    ping_ok(net, "gw", "198.51.100.10", "-c", 2, "-i", 0.05)
    flow_wait(net, 20, "flow-c2", "flow-c3", "flow-gw-c3")
    flow_ok(net, "flow-c2", 0)
    flow_ok(net, "flow-c3", 0)
    flow_ok(net, "flow-gw-c3", 0)
    gw1 = snap(net, "gw", "after")
    cs = {i: snap(net, f"c{i}", "after") for i in (2, 3)}
    np_, op = gw1.t("c1", "peer"), gw0.t("c1", "peer")
    assert np_ != op and np_.startswith(f"{NAT}:"), (
        f"gateway's c1 peer {op} -> {np_}: expected a new port on {NAT}"
    )
    for i in (2, 3):
        b, a = gw0["by"][f"c{i}"], gw1["by"][f"c{i}"]
        assert a["peer"] == b["peer"], f"c{i}'s peer moved across the reload: {b['peer']} -> {a['peer']}"
        assert a["packets_in"] > b["packets_in"] + 400, (
            f"gateway tunnel c{i} counters did not carry over the reload ({b['packets_in']} -> "
            f"{a['packets_in']})"
        )
        assert a["endpoint_changes"] == 0, f"gateway tunnel c{i}: endpoint_changes {a['endpoint_changes']}"
        assert cs[i].drops("replayed", "outside_window", "auth_failed", "unknown_spi") == 0, (
            f"c{i} drops after the gateway's reload (sequence numbers restarted?): {cs[i].nonzero_drops()}"
        )
    # (no_peer is allowed: the gateway holds c1's traffic until c1, whose SAs are all new, speaks)
    assert gw1.drops("replayed", "outside_window", "auth_failed") == 0, (
        f"gateway drops: {gw1.nonzero_drops()}"
    )
    cap.stop(margin=1)
    # where did the gateway send c1's traffic between the reload and c1's first packet from the new port?
    newspi = configs_scenario(cfg)["hosts"]["gw"]["tunnels"][0]["spi_out"]
    oldport = op.rsplit(":", 1)[1]
    rows = tshark_fields(cap, f"esp && ip.src == {GW} && udp.dstport == {oldport}", "esp.spi")
    stale = sum(1 for r in rows if r[0].lower() == newspi)
    assert stale == 0, (
        f"{stale} packet(s) with c1's new SA went to its old NAT port {oldport} before c1 spoke"
    )
    net.info(
        f"reload {reload_ms} ms (a truncated file: 'reload failed', nothing changed); c1 {op} -> "
        f"{np_} with new SAs; "
        f"nothing sent to its old port {oldport} before c1 spoke"
    )
    fl = {n: flow_summary(net, n) for n in ("flow-c2", "flow-c3", "flow-gw-c3")}
    rtt = max(f["rtt_ms_max"] or 0 for f in fl.values())
    net.info(
        f"c2 -> gw {fl['flow-c2']['received']}/{fl['flow-c2']['sent']}, c3 -> gw {fl['flow-c3']['received']}/"
        f"{fl['flow-c3']['sent']}, gw -> c3 {fl['flow-gw-c3']['received']}/{fl['flow-gw-c3']['sent']} "
        "answered "
        f"across the restart (longest round trip {rtt} ms); c2, c3 peers and counters kept"
    )
    stop_all(net, "c1", "c2", "c3", "gw")


def configs_scenario(cfg):
    """scenario.json as it is now (configs.py rekey rewrites it)."""
    with open(os.path.join(cfg.dir, "scenario.json")) as f:
        return json.load(f)


# 6b. The restart of item 6 with one shared alias (L2TP/IPsec behind one NAT): the gateway (the LNS)
# sends to the other clients on flows it learned from them; the reload must not make it forget them.
# The clients speak once and then only listen, so that nothing but the reload can change the flows.
@pytest.mark.parametrize(
    "workers",
    [pytest.param(False, id="reload-shared-alias"), pytest.param(True, id="reload-shared-alias-workers")],
)
def test_reload_shared_alias(net, workers):
    alias, n = "198.51.100.130", 100
    cfg = net.configs("nat", "--mode", "transport", "--alias", "shared", "--clients", 3)
    nat_up(net, cfg, 3, WORKERS if workers else ())
    gw = net.espds["espd-gw"]
    # each client says hello (udp 198.51.100.50:170i -> 198.51.100.1:180i), then logs what comes back
    for i in (1, 2, 3):
        echo_bg(
            net,
            f"sink-c{i}",
            f"c{i}",
            TCLIENT,
            1700 + i,
            "udp",
            20,
            "--hello",
            f"{G4}:{1800 + i}",
            "--silent",
        )
    # the gateway learns each client's flow from its hello: wait until all three are in
    gw0, held = snap_until(
        net, "gw", "before", lambda s: all(s.t(f"c{i}", "packets_in") >= 1 for i in (1, 2, 3)), 3
    )
    assert held, (
        "the gateway did not get all three hellos: "
        f"{[{'name': t['name'], 'packets_in': t['packets_in']} for t in gw0['by'].values()]}"
    )
    # gateway-initiated streams to c2 and c3 (20/s for 5 s), each from the port its client said hello to
    for i in (2, 3):
        net.tool_bg(
            f"send-gw-c{i}",
            "gw",
            f"udp-client --to {alias} --port {1700 + i} --sport {1800 + i} --payload gw-c{i} --count "
            f"{n} --no-echo",
        )
    time.sleep(1.5)
    stop(net, "c1")
    configs_py("rekey", cfg.dir, "--host", "c1", "--port", 4501)
    ok, line, reload_ms = gw.reload(5)
    assert ok, f"reload: espd espd-gw: {line}"
    net.espd("c1", cfg)
    flow_wait(net, 15, "send-gw-c2", "send-gw-c3")
    time.sleep(0.3)
    gw1 = snap(net, "gw", "after")
    nr = gw1["drops"]["no_route"] - gw0["drops"]["no_route"]
    got = {}
    for i in (2, 3):
        got[i] = sum(1 for e in json_lines(net, f"sink-c{i}", "request") if e["text"] == f"gw-c{i}")
        assert got[i] == n, (
            f"c{i} received {got[i]} of the gateway's {n} datagrams across c1's restart and the reload"
        )
    assert nr == 0, (
        f"the gateway dropped {nr} of its own datagrams as no_route after the reload: "
        "the learned flows of c2 and c3 were forgotten"
    )
    net.info(
        f"reload {reload_ms} ms; gateway -> c2 {got[2]}/{n}, gateway -> c3 {got[3]}/{n} delivered across "
        "c1's restart, by flows learned once before it"
    )
    stop_all(net, "c1", "c2", "c3", "gw")
    if workers:
        check_workers(net)


# 7. The gateway with 10,000 tunnels, traffic from three of them.
SCALE = {}  # scale-10k's reload measurement, judged by scale-10k-reload


@named("scale-10k")
def test_scale_10k(net, name):
    n = 10000
    d, base = net.log("cfg"), net.log("base")
    configs_py("many", "--out", d, "--tunnels", n, "--clients", 3)
    configs_py("many", "--out", base, "--tunnels", 3, "--clients", 3)
    cfg, basecfg = Configs(d), Configs(base)
    size = os.path.getsize(cfg.path("gw")) // 1024
    nat_only(net, 3)
    # baseline: the same gateway with 3 tunnels
    e = net.espd("gw", basecfg)
    time.sleep(0.3)
    rss3, _ = e.memory()
    stop(net, "gw")
    # 10,000 tunnels: ready = `running` logged, TUN up, port bound, all 10,000 routes in the kernel
    gw = net.espd_instance("gw", cfg)
    ns = net.ns("gw")
    t0 = time.monotonic()
    gw.launch()
    t_run = t_routes = None
    routes = 0
    while True:
        now = int((time.monotonic() - t0) * 1000)
        assert gw.alive(), f"espd exited at start: {gw.why()}"
        if t_run is None and " running" in net.read("espd-gw.err"):
            t_run = now
        if t_routes is None:
            out = run(["ip", "-n", ns.name, "-6", "route", "show", "dev", "espd0"], check=False).stdout
            routes = sum(1 for x in out.splitlines() if x.startswith("2001:db8:1::"))
            if routes == n:
                t_routes = now
        if t_run is not None and t_routes is not None and ns.link_up("espd0") and ns.udp_bound(4500):
            t_ready = now
            break
        assert now <= 60000, f"not ready after 60 s: running={t_run or 'no'}, routes {routes}/{n}"
        time.sleep(0.05)
    rss, hwm = gw.memory()
    for i in (1, 2, 3):
        net.espd(f"c{i}", cfg)
    echo_bg(net, "echo", "gw", G6, 7000, "udp", 25)
    inner = {}
    for i in (1, 2, 3):
        inner[i] = cfg.hosts[f"c{i}"]["inner6"]
        ping_ok(net, f"c{i}", G6, "-c", 3, "-i", 0.05)
        flow_bg(
            net,
            f"flow-c{i}",
            f"c{i}",
            f"--to {G6} --port 7000 --tag c{i} --count 100 --interval 0.02 --expect-from {inner[i]} "
            "--linger 2",
        )
    flow_wait(net, 12, "flow-c1", "flow-c2", "flow-c3")
    for i in (1, 2, 3):
        flow_ok(net, f"flow-c{i}", 0)
        ping_ok(net, "gw", inner[i], "-c", 2, "-i", 0.05)
    # a configured tunnel that never heard from its peer: dropped as no_peer, no crash
    p = ns.tool("ping", "-c", 1, "-W", 0.3, cfg.scenario["hosts"]["gw"]["silent_example"])
    assert p.returncode != 0, "a silent tunnel answered"
    s = snap(net, "gw", "after")
    assert len(s["by"]) == n, f"stats list {len(s['by'])} tunnels, expected {n}"
    for i in (1, 2, 3):
        assert s.t(f"c{i}", "packets_in") >= 103, (
            f"gateway tunnel c{i}: packets_in {s.t(f'c{i}', 'packets_in')}"
        )
    assert s["drops"]["no_peer"] >= 1, "the ping into a silent tunnel was not counted no_peer"
    busy = sum(1 for t in s["by"].values() if t["packets_in"] > 0)
    assert busy == 3, "traffic on more than the 3 real tunnels"
    rss2, hwm2 = gw.memory()
    # reload the unchanged 10,000-tunnel file under a steady stream from c2: nothing may be lost (the
    # datagrams wait in the socket while the loop swaps tables); the longest round trip is the pause
    flow_bg(
        net,
        "flow-reload",
        "c2",
        f"--to {G6} --port 7000 --tag c2r --count 3000 --interval 0.02 --expect-from {inner[2]} --linger 3",
    )
    time.sleep(0.5)
    ok, line, reload_ms = gw.reload(30)
    assert ok, f"reload of {n} tunnels: espd espd-gw: {line}"
    time.sleep(0.5)
    os.kill(net.bgs["flow-reload"].pid, signal.SIGTERM)  # it stops sending, lingers, sums up
    flow_wait(net, 5, "flow-reload")
    f = flow_ok(net, "flow-reload", 1000000)  # misdelivery fails here; loss is judged by scale-10k-reload
    SCALE["lost"] = f["lost"]
    SCALE["text"] = (
        f"SIGHUP reload of {n} tunnels took {reload_ms} ms; c2's 50/s stream across it: {f['lost']} "
        f"of {f['sent']} "
        f"lost, longest round trip {f['rtt_ms_max']} ms (how long forwarding paused); {kdrops(net, 'gw')}; "
        f"{kdrops(net, 'c2')}"
    )
    for i in (1, 3):
        ping_ok(net, f"c{i}", G6, "-c", 2, "-i", 0.05)
    stop_all(net, "c1", "c2", "c3")
    s0 = time.monotonic()
    stop(net, "gw", 20)
    stop_ms = int((time.monotonic() - s0) * 1000)
    per = (rss - rss3) * 1024 // (n - 3)
    net.info(
        f"{n} tunnels ({size} KiB config): ready in {t_ready} ms (running logged at {t_run} ms, {n} "
        "routes at "
        f"{t_routes} ms)"
    )
    net.info(
        f"VmRSS {rss // 1024} MiB, VmHWM {hwm // 1024} MiB at start; after traffic VmRSS {rss2 // 1024} MiB, "
        f"VmHWM {hwm2 // 1024} MiB; 3-tunnel baseline VmRSS {rss3 // 1024} MiB (~{per} bytes per tunnel)"
    )
    net.info(
        f"3 clients (tunnels 0, 5000, 9999): 3 x 100 echoed, pings both ways; SIGHUP reload {reload_ms} ms; "
        f"SIGTERM to exit {stop_ms} ms"
    )
    net.info(f"binary {os.path.basename(os.path.dirname(net.session.espd_source))}")


@named("scale-10k-reload")
def test_scale_10k_reload(net, name):
    """The verdict on the reload measured by scale-10k: other tunnels lose nothing (item 6 at scale)."""
    assert SCALE, "not measured (scale-10k did not run or did not get that far)"
    assert SCALE["lost"] == 0, SCALE["text"]
    net.info(SCALE["text"])
