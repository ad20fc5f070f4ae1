#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The main job (issue 15): strongSwan's charon drives espd as a VPN gateway for three clients.

The gateway is configured with the README's examples as written (examples/strongswan/espd.json,
strongswan.conf, swanctl-psk.conf; only /run/espd/ becomes this run's folder, since charon runs
with a private /run). Three strongSwan clients (charon + kernel-libipsec) behind one NAT
(nftables masquerade) connect with `swanctl --initiate`, IKEv2 with the example's PSK, each given
a virtual IP from its pool; no key is written by hand. Then: SAs and espd's tunnels agree, ping
and iperf3 through the tunnels, only IKE and ESP-in-UDP on the wire, espd's drop counters zero,
`swanctl --terminate` removes one tunnel. Everything is stopped by PID and the namespaces removed,
also on failure and on Ctrl-C. Prints PASS/FAIL lines and a one-line summary; exit 0 or 1.

Run by scripts/demo.sh (which installs and builds first); as root: python3 scripts/demo.py
(ESPD=/path/to/espd picks the binary, KEEP=1 keeps the logs and captures).
"""

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "live"))

from livecharon import GW_PLUGINS, Charon, plugins  # noqa: E402
from liveespd import Espd, counter, spi_set  # noqa: E402
from liveiperf import IperfServer, iperf, tcp_mbps  # noqa: E402
from livelab import Gateway, Lab, Session, Unavailable, client_child, client_conn  # noqa: E402
from livenet import GW_ADDR, GW_INNER, NAT_ADDR, Capture, ping  # noqa: E402
from liveproc import wait_for  # noqa: E402

EXAMPLES = os.path.join(REPO, "examples", "strongswan")
CLIENTS = 3
DEADLINE = 110  # seconds for everything before the cleanup
DROPS = ("unknown_spi", "auth_failed", "replayed")


class Deadline(BaseException):
    """The demo ran out of time (a BaseException: no check swallows it)."""


def parse_settings(text):
    """strongSwan's settings syntax (strongswan.conf, swanctl.conf) as nested dicts of strings."""
    root = {}
    stack = [root]
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.endswith("{"):
            section = {}
            stack[-1][line[:-1].strip()] = section
            stack.append(section)
        elif line == "}":
            stack.pop()
        else:
            key, value = line.split("=", 1)
            stack[-1][key.strip()] = value.strip()
    return root


def relocate(obj, folder):
    """Every /run/espd/ path in obj moved into folder."""
    if isinstance(obj, dict):
        return {k: relocate(v, folder) for k, v in obj.items()}
    if isinstance(obj, list):
        return [relocate(v, folder) for v in obj]
    if isinstance(obj, str):
        return obj.replace("/run/espd/", f"{folder}/")
    return obj


def example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


class Demo:
    def __init__(self):
        self.passed = []
        self.failed = []

    def check(self, what, fn):
        """Runs fn (its result is the figure printed); an exception is a FAIL with its message."""
        try:
            figure = fn()
        except Exception as e:
            self.failed.append(what)
            msg = " ".join(str(e).split())[:300] or type(e).__name__
            print(f"   FAIL {what}: {msg}", flush=True)
            return False
        self.passed.append(what)
        print(f"   PASS {what}" + (f": {figure}" if figure not in (None, "") else ""), flush=True)
        return True


def expect(cond, message):
    if not cond:
        raise AssertionError(message)


def start_gateway(lab):
    """charon + kernel-espd + socket-espd and espd, configured from examples/strongswan."""
    d = os.path.join(lab.dir, "gw")
    os.makedirs(d)
    espd_conf = relocate(json.loads(example("espd.json")), d)
    swan = relocate(parse_settings(example("strongswan.conf")), d)["charon"]
    plugin_conf = swan.pop("plugins")
    charon = Charon("gateway", lab.topo.gw, d, lab.procs, plugins(*GW_PLUGINS), swan, plugin_conf)
    charon.start()
    punt = espd_conf["ike"]["punt"].removeprefix("unix:")
    wait_for(lambda: os.path.exists(punt), 10, what="charon's punt socket")
    espd = Espd(lab.topo.gw, os.path.join(d, "espd"), lab.session.espd, lab.procs, espd_conf)
    espd.start()
    charon.wait_for_log(r"kernel-espd: subscribed to espd's events", 10)
    shutil.copy(os.path.join(EXAMPLES, "swanctl-psk.conf"), charon.swanctl_conf)
    loaded = charon.load()  # swanctl --load-all
    lab.gw = Gateway(charon, espd)
    conns = [line.split("'")[1] for line in loaded.stdout.splitlines() if "loaded connection" in line]
    pools = [line.split("'")[1] for line in loaded.stdout.splitlines() if "loaded pool" in line]
    expect(conns and pools, f"swanctl --load-all: {loaded.stdout}")
    return (
        f"espd on {', '.join(espd_conf['listen'] + espd_conf['ike']['listen'])}, "
        f"TUN {espd_conf['tun']['addresses'][0]}; charon port {swan['port']}/{swan['port_nat_t']}; "
        f"loaded {', '.join(conns)}, pool {', '.join(pools)}"
    )


class IkeCapture(Capture):
    """A Capture that also reads the IKE initiator SPI, to follow each IKE_SA on its own."""

    FIELDS = [*Capture.FIELDS, "isakmp.ispi"]


def ike_on_the_wire(pkts):
    """Each IKE_SA: IKE_SA_INIT on 500, every later message on 4500; (SAs, init, later) counts."""
    ike = [p for p in pkts if p["isakmp.exchangetype"]]
    expect(ike, "no IKE captured")
    by_sa = {}
    for p in ike:
        by_sa.setdefault(p["isakmp.ispi"], []).append(p)
    n_init = n_rest = 0
    for spi, msgs in by_sa.items():
        init = [p for p in msgs if p["isakmp.exchangetype"] == "34"]
        rest = [p for p in msgs if p["isakmp.exchangetype"] != "34"]
        expect(init and rest, f"IKE_SA {spi}: {len(init)} IKE_SA_INIT, {len(rest)} later messages")
        for p in init:
            expect("500" in (p["udp.srcport"], p["udp.dstport"]), f"IKE_SA_INIT not on 500: {p}")
        for p in rest:
            ports = (p["udp.srcport"], p["udp.dstport"])
            expect("4500" in ports and "500" not in ports, f"later IKE not on 4500: {p}")
        expect(int(rest[0]["frame.number"]) > int(init[-1]["frame.number"]), f"IKE_SA {spi}: 4500 first")
        n_init += len(init)
        n_rest += len(rest)
    return len(by_sa), n_init, n_rest


def run_demo(demo, session):
    lab = Lab(session, "demo")
    try:
        body(demo, lab)
    finally:
        # no second Ctrl-C or deadline in the middle of the cleanup (each stop is bounded)
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\n== stopping (charon, espd, iperf3, dumpcap by PID) and removing the namespaces")
        procs = list(lab.procs.procs)
        prefix = lab.topo.prefix if lab.topo else None
        lab.close()

        def stopped():
            left = [p.pid for p in procs if p.poll() is None]
            expect(not left, f"still running: {left}")
            names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
            ours = [n.split()[0] for n in names.splitlines() if prefix and n.startswith(prefix)]
            expect(not ours, f"namespaces left: {ours}")
            return f"{len(procs)} processes stopped, namespaces {prefix}-* removed"

        demo.check("everything stopped and removed", stopped)


def body(demo, lab):
    topo = lab.topo
    print(
        f"\n== topology: gateway {GW_ADDR} <-> NAT {NAT_ADDR} (masquerade) <-> "
        f"{CLIENTS} clients 203.0.113.10-{9 + CLIENTS}; behind the gateway {GW_INNER}"
    )
    print("\n== gateway: charon (kernel-espd, socket-espd) + espd, configured by examples/strongswan/*")
    if not demo.check("gateway up with the examples' configuration", lambda: start_gateway(lab)):
        return
    gw = lab.gw
    cap = IkeCapture(topo.gw, topo.gw_if, f"{lab.dir}/outside.pcapng", lab.procs, snaplen=200)

    conf = parse_settings(example("swanctl-psk.conf"))
    pool = ipaddress.ip_network(next(iter(conf["pools"].values()))["addrs"])
    psk = next(iter(conf["secrets"].values()))["secret"]
    print(
        f"\n== {CLIENTS} clients (charon, kernel-libipsec) behind the NAT: swanctl --initiate, vips = 0.0.0.0"
    )
    clients = []
    for i in range(1, CLIENTS + 1):
        conn = client_conn({"net": client_child("dynamic")}, True, f"c{i}.example", vips="0.0.0.0")
        clients.append(lab.client({"gw": conn}, secrets={"ike-gw": {"secret": psk}}))
    vips = {}
    for i, cl in enumerate(clients, 1):

        def connect(i=i, cl=cl):
            t0 = time.monotonic()
            cl.initiate("net", timeout=15)
            took = time.monotonic() - t0
            (ike,) = cl.list_sas()
            vip = ike["local"]["vip"]
            expect(ike["state"] == "ESTABLISHED", f"IKE_SA {ike['state']}")
            expect(vip and ipaddress.ip_address(vip) in pool, f"VIP {vip} not in {pool}")
            vips[i] = vip
            return f"VIP {vip} (pool {pool}), IKE_SA established in {took * 1000:.0f} ms"

        demo.check(f"c{i} IKE_SA up, virtual IP from the pool", connect)
    if len(vips) != CLIENTS:
        return

    print("\n== espd's tunnels and charon's SAs")
    pairs = {}

    def tunnels_match():
        by_vip = {}
        for ike in gw.charon.list_sas():
            for child in ike["children"]:
                if child["state"] == "INSTALLED":
                    by_vip[ike["remote"]["vip"]] = (child["spi_in"], child["spi_out"])
        tunnels = gw.espd.cli_list()  # espd tunnel list --json
        expect(len(tunnels) == CLIENTS, f"{len(tunnels)} tunnels in espd, want {CLIENTS}")
        for i, vip in vips.items():
            (cchild,) = clients[i - 1].children("net")
            spi_in, spi_out = by_vip[vip]
            expect((cchild["spi_in"], cchild["spi_out"]) == (spi_out, spi_in), f"c{i}'s SPIs differ")
            (t,) = [t for t in tunnels if t["remote_ts"] == [f"{vip}/32"]]
            expect(spi_set(t) == ({spi_in}, spi_out), f"espd's tunnel {t['name']}: {spi_set(t)}")
            pairs[i] = (t["name"], spi_in, spi_out)
        peers = sorted(t["peer"] for t in tunnels)
        expect(all(p.startswith(f"{NAT_ADDR}:") for p in peers), f"peers {peers}")
        return "; ".join(f"{n} {a:08x}_i {b:08x}_o" for n, a, b in pairs.values()) + f" (peers {peers})"

    demo.check(f"espd tunnel list: {CLIENTS} tunnels, SPIs as swanctl --list-sas", tunnels_match)

    print(f"\n== traffic: ping from each VIP to {GW_INNER}, iperf3 TCP 3 s each way from c1")
    for i, vip in vips.items():

        def pings(i=i, vip=vip):
            received, sent = ping(topo.clients[i - 1], GW_INNER, src=vip, count=3, interval=0.2)
            expect(received == sent, f"{received}/{sent} replies")
            return f"{received}/{sent} replies"

        demo.check(f"ping c{i} {vip} -> {GW_INNER}", pings)
    server = IperfServer(topo.gw, GW_INNER, lab.procs, lab.dir)
    for reverse in (False, True):
        what = f"{GW_INNER} -> c1 {vips[1]}" if reverse else f"c1 {vips[1]} -> {GW_INNER}"

        def tcp(reverse=reverse):
            mbps = tcp_mbps(iperf(topo.clients[0], GW_INNER, vips[1], seconds=3, reverse=reverse))
            expect(mbps > 1, f"{mbps:.1f} Mbit/s")
            return f"{mbps:.0f} Mbit/s"

        demo.check(f"iperf3 TCP {what}", tcp)
    server.stop()

    print("\n== on the wire (captured on the gateway's outside interface)")
    cap.stop()
    pkts = [p for p in cap.packets("ip") if p["ip.src"] or p["ip.dst"]]

    def ike_ports():
        sas, n500, n4500 = ike_on_the_wire(pkts)
        return f"{sas} IKE_SAs: {n500} IKE_SA_INIT packets on 500, then {n4500} IKE packets on 4500"

    def nothing_clear():
        ports = {"500", "4500"}
        clear = [p for p in pkts if p["ip.proto"] != "17" or not {p["udp.srcport"], p["udp.dstport"]} & ports]
        expect(not clear, f"{len(clear)} packets in the clear, e.g. {clear[:2]}")
        esp = [p for p in pkts if p["esp.spi"]]
        on4500 = [p for p in esp if "4500" in (p["udp.srcport"], p["udp.dstport"])]
        expect(esp and on4500 == esp, f"{len(esp)} ESP packets, {len(on4500)} on UDP 4500")
        ike = sum(1 for p in pkts if p["isakmp.exchangetype"])
        spis = {int(p["esp.spi"], 16) for p in esp}
        known = {s for _, a, b in pairs.values() for s in (a, b)}
        expect(spis <= known, f"ESP with unknown SPIs {sorted(spis - known)}")
        other = len(pkts) - len(esp) - ike
        return f"{len(esp)} ESP-in-UDP on 4500 ({len(spis)} SPIs), {ike} IKE, {other} keepalives, 0 clear"

    demo.check("IKE_SA_INIT on 500, then IKE only on 4500", ike_ports)
    demo.check("only IKE and ESP-in-UDP outside, nothing in the clear", nothing_clear)

    def drops():
        stats = gw.espd.stats()
        values = {k: counter(stats, k) for k in DROPS}
        expect(not any(values.values()), f"{values}")
        return ", ".join(f"{k} {v}" for k, v in values.items())

    demo.check("espd's drop counters zero", drops)

    print("\n== swanctl --terminate on c2")

    def terminate():
        t0 = time.monotonic()
        clients[1].swanctl("--terminate", "--ike", "gw", "--timeout", "10", timeout=20)
        wait_for(lambda: len(gw.espd.tunnels()) == CLIENTS - 1, 10, what="espd to remove c2's tunnel")
        took = time.monotonic() - t0
        left = {t["name"]: spi_set(t) for t in gw.espd.tunnels()}
        want = {n: ({a}, b) for i, (n, a, b) in pairs.items() if i != 2}
        expect(left == want, f"espd kept {left}, want {want}")
        return f"{pairs[2][0]} gone after {took * 1000:.0f} ms, {', '.join(sorted(left))} untouched"

    demo.check("c2's tunnel, and only it, removed from espd", terminate)


def main():
    t0 = time.monotonic()
    demo = Demo()
    try:
        session = Session.open("espd-demo.")
    except Unavailable as e:
        print(f"demo: FAILED (cannot run: {e})")
        return 1
    print(session.describe())
    if not session.ike500:
        print("   (this espd has no ike.listen: examples/strongswan/espd.json will be refused)")

    def deadline(signum, frame):
        raise Deadline(f"the demo took longer than {DEADLINE} s")

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, deadline)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)  # also when started with SIGINT ignored (in the background)
    signal.alarm(DEADLINE)
    aborted = None
    try:
        run_demo(demo, session)
    except Deadline as e:
        aborted = str(e)
    except KeyboardInterrupt:
        aborted = "interrupted"
    except Exception as e:  # a step outside any check: still a FAIL, after the cleanup
        aborted = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
    ok = not demo.failed and not aborted
    session.close(keep=not ok)
    if not ok:
        print(f"\nlogs, configs and the capture kept in {session.tmp}")
    took = time.monotonic() - t0
    print()
    if ok:
        print(
            f"demo: passed ({len(demo.passed)} checks: gateway charon + espd from examples/strongswan, "
            f"{CLIENTS} clients with virtual IPs behind one NAT, ping and iperf3 through the tunnels, "
            f"IKE 500 -> 4500 and only ESP-in-UDP on the wire, terminate removes one tunnel; {took:.0f} s)"
        )
        return 0
    total = len(demo.passed) + len(demo.failed)
    reasons = list(demo.failed) + ([aborted] if aborted else [])
    print(f"demo: FAILED ({len(demo.failed)} of {total} checks; {'; '.join(reasons)}; {took:.0f} s)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
