"""espd between network namespaces (was scripts/netns-test.sh): tunnel and transport mode, every
algorithm, IPv4/IPv6 inner and outer, a NAT with two clients, io_uring and mmsg, offloads, jumbo
frames, keepalives, the IKE punt round trip, tshark on the underlay, shutdown under load.

Each bash test NAME is one pytest item whose id is NAME in brackets (test_tunnel[tunnel-uring],
test_alg[alg-aes128gcm16], test_preflight[preflight], ...): `-k tunnel-uring` selects it, `-k jumbo`
the four jumbo tests, as `netns-test.sh -k REGEX` did. Topologies and addresses: livenet.py
(PairTopology, NatTopology); configs: scripts/netns/configs.py; helpers: netlab.py.

    sudo ESPD=.build/debug/espd python3 -m pytest -q -rxXs -m netns tests/live
"""

import os
import re
import secrets
import sys
import time

import pytest

from livechecks import (
    counter,
    counter_ge,
    counter_zero_if_present,
    iperf_ok,
    iperf_udp_ok,
    json_lines,
    named,
    ping_ok,
    preflight,
    route_ok,
    stop,
    udp_server,
)
from liveconfigs import ALGS, REPO
from livenet import A_OUT4, B_OUT4, B_OUT6, GW_OUT4, NAT_OUT4, Capture
from liveproc import run, wait_for

pytestmark = pytest.mark.netns

RESPONDER = os.path.join(REPO, "scripts", "ike_responder.py")
ALGS_WITH_IPERF = {"chacha20poly1305", "aes256-sha256", "aes256-sha1", "aes256-sha512"}


def pair_up(net, cfg, *args):
    """The pair topology, espd on a and b (espd run ARGS)."""
    net.pair()
    net.espd("a", cfg, *args)
    net.espd("b", cfg, *args)


def nat_up(net, cfg, clients):
    """The nat topology, espd on gw and each client."""
    net.nat(clients)
    net.espd("gw", cfg)
    for i in range(1, clients + 1):
        net.espd(f"c{i}", cfg)


def set_mtu(cfg, mtu):
    for h in ("a", "b"):
        cfg.edit(h, lambda c: c["tun"].__setitem__("mtu", mtu))


# ------------------------------------------------------------------ tests without espd


@named("preflight")
def test_preflight(net, name):
    preflight(net)


@named("configs")
def test_configs(net, name):
    for alg in ALGS:
        cfg = net.configs("pair", "--alg", alg, name=alg)
        # the two ends pair up: a's outbound is b's inbound, with the same key
        a, b = cfg.load("a")["tunnels"][0], cfg.load("b")["tunnels"][0]

        def without_window(sa):
            return {k: v for k, v in sa.items() if k != "replay_window"}

        assert a["outbound"] == without_window(b["inbound"][0]) and b["outbound"] == without_window(
            a["inbound"][0]
        ), f"{alg}: the SAs of a and b do not match"
    net.configs("pair", "--outer", "6", "--alg", "aes256gcm16", name="outer6")
    net.configs("pair", "--mode", "transport", "--inner", "4", name="transport")
    net.configs("nat", "--clients", "1", "--full-tunnel", "c1", name="full")
    nat = net.configs(
        "nat", "--clients", "2", "--keepalive", "1", "--ike-punt", "udp:127.0.0.1:4501", name="nat"
    )
    net.configs("pair", "--esn", name="esn")
    p = run([net.espd_binary, "keys", "--config", nat.path("gw"), "--format", "wireshark"], check=False)
    n = sum(1 for line in (p.stdout + p.stderr).splitlines() if line.startswith('"IPv4"'))
    assert n == 4, f"espd keys on the NAT gateway config: {n} esp_sa lines, expected 4"
    net.info("every generated config passes espd check")


@named("ike-responder")
def test_ike_responder(net, name):
    p = run([sys.executable, RESPONDER, "--selftest"], check=False, timeout=60)
    assert p.returncode == 0, f"ike_responder.py --selftest: {(p.stdout + p.stderr).replace(chr(10), ' ')}"


@named("topology-pair")
def test_topology_pair(net, name):
    net.pair()
    ping_ok(net, "a", B_OUT4, "-c", 2)
    ping_ok(net, "a", B_OUT6, "-c", 2)
    ping_ok(net, "b", A_OUT4, "-c", 1, "-s", 1400)


@named("topology-nat")
def test_topology_nat(net, name):
    topo = net.nat(2)
    ping_ok(net, "c1", GW_OUT4, "-c", 2)
    ping_ok(net, "c2", GW_OUT4, "-c", 2)
    p = net.ns("gw").tool("ping", "-c", 1, "-W", 0.5, "203.0.113.10")
    assert p.returncode != 0, "the gateway reaches 203.0.113.10 without the NAT"
    # both clients from source port 4500 (as espd does): the gateway must see the NAT's address,
    # on two different ports (masquerade remaps the second)
    srv = udp_server(net, "gw", "--bind", GW_OUT4, "--port", 4500, "--count", 2, "--timeout", 5, "--echo")
    for c in ("c1", "c2"):
        p = net.ns(c).tool("udp-client", "--to", GW_OUT4, "--port", 4500, "--sport", 4500, "--payload", c)
        assert p.returncode == 0, f"{c}: no UDP echo from the gateway"
    net.wait_exit(srv, 3)
    got = json_lines(net, "udp", "datagram")
    srcs = sorted({d["from"] for d in got})
    ports = [d["port"] for d in got]
    assert srcs == [NAT_OUT4], f"the gateway saw sources {srcs}, expected only {NAT_OUT4}"
    assert len(set(ports)) == 2, "the two clients were not given distinct NAT ports"
    ct = topo.conntrack_udp(4500)
    with open(net.log("conntrack.txt"), "w") as f:
        f.write(ct)
    n = sum(1 for line in ct.splitlines() if f"dst={NAT_OUT4} sport=4500" in line)
    assert n == 2, f"conntrack in the NAT namespace does not show both clients masqueraded to {NAT_OUT4}"
    net.info(f"gateway sees {NAT_OUT4} on ports {' '.join(map(str, ports))}")


# ------------------------------------------------------------------ espd: two namespaces

NO_OFFLOAD = ("--tun-offload", "off", "--udp-gso", "off", "--udp-gro", "off")


@pytest.mark.parametrize(
    "io,outer,alg,args",
    [
        pytest.param("uring", 4, "aes128gcm16", (), id="tunnel-uring"),
        pytest.param("mmsg", 4, "aes128gcm16", (), id="tunnel-mmsg"),
        pytest.param("uring", 4, "aes128gcm16", NO_OFFLOAD, id="tunnel-no-offload"),
        pytest.param("uring", 4, "aes128gcm16", ("--workers", "2"), id="tunnel-workers"),
        pytest.param("", 6, "aes256gcm16", (), id="tunnel-outer6"),
    ],
)
def test_tunnel(net, io, outer, alg, args):
    """Tunnel mode, both inner families, ping + iperf3 TCP and UDP; io = uring|mmsg|"" (espd's
    default), outer = 4|6; args go to `espd run` (NO_OFFLOAD: every offload switched off)."""
    args = list(args) + (["--io", io] if io else [])
    cfg = net.configs("pair", "--alg", alg, "--outer", outer, "--inner", "4,6")
    pair_up(net, cfg, *args)
    h = cfg.hosts
    a4, a6, b4, b6 = h["a"]["inner4"], h["a"]["inner6"], h["b"]["inner4"], h["b"]["inner6"]
    route_ok(net, "a", b4)
    route_ok(net, "a", b6)
    route_ok(net, "b", a4)
    route_ok(net, "b", a6)
    ping_ok(net, "a", b4, "-c", 3)
    ping_ok(net, "b", a4, "-c", 2)
    ping_ok(net, "a", b6, "-c", 3)
    ping_ok(net, "a", b4, "-c", 2, "-s", 1300)
    iperf_ok(net, "tcp4", "b", "a", b4, 2)
    iperf_udp_ok(net, "udp4", "b", "a", b4)
    iperf_ok(net, "tcp6", "b", "a", b6, 2)
    net.espds["espd-a"].stats()
    net.espds["espd-b"].stats()
    for host in ("a", "b"):
        counter_ge(net, host, "encapsulated", 10)
        counter_ge(net, host, "decapsulated", 10)
    for key in ("auth_failed", "malformed", "replayed"):
        # replayed: one writer per SA (also with --workers): no sequence number is ever sent twice
        counter_zero_if_present(net, "a", key)
        counter_zero_if_present(net, "b", key)
    off = "off" in args
    if io != "mmsg" and not off:
        # a sends the TCP streams: TSO packets from its TUN cut into segments, sent with UDP GSO;
        # b receives them coalesced (UDP GRO) and writes them to its TUN coalesced (TCP GRO)
        counter_ge(net, "a", "tun_gso_segments", 100)
        counter_ge(net, "a", "udp_gso_sends", 10)
        counter_ge(net, "b", "udp_gro_datagrams", 100)
        counter_ge(net, "b", "tun_gro_segments", 100)
        c = {k: counter(net, "a", k) for k in ("tun_gso_segments", "tun_gso_packets")}
        c.update({k: counter(net, "b", k) for k in ("udp_gro_datagrams", "udp_gro_receives")})
        c.update({k: counter(net, "b", k) for k in ("tun_gro_segments", "tun_gro_packets")})
        net.info(
            f"offloads: a cut {c['tun_gso_segments']} segments from {c['tun_gso_packets']} TUN packets; "
            f"b took {c['udp_gro_datagrams']} datagrams in {c['udp_gro_receives']} receives, "
            f"wrote {c['tun_gro_segments']} segments in {c['tun_gro_packets']} writes"
        )
    elif off:
        for k in ("tun_gso_packets", "udp_gso_sends", "udp_gro_receives", "tun_gro_packets"):
            v = counter(net, "a", k)
            assert v == 0, f"espd-a counter {k} = {v} with every offload off"
    stop(net, "a")
    stop(net, "b")


@named("gso-refused")
def test_gso_refused(net, name):
    """TUN MTU 1500 over a 1500 underlay: ESP datagrams exceed the route MTU, so the kernel refuses
    UDP GSO sends (EINVAL); espd must turn GSO off, send those datagrams one by one (IP fragments),
    and lose nothing."""
    cfg = net.configs("pair", "--inner", "4")
    set_mtu(cfg, 1500)
    pair_up(net, cfg)
    b4 = cfg.hosts["b"]["inner4"]
    ping_ok(net, "a", b4, "-c", 2, "-s", 1400)
    iperf_ok(net, "tcp4", "b", "a", b4, 2)
    net.espds["espd-a"].stats()
    v = counter(net, "a", "udp_gso_refused")
    assert v == 1, f"espd-a udp_gso_refused = {v}, expected 1"
    v = counter(net, "a", "udp_send_dropped")
    assert v == 0, f"espd-a dropped {v} datagrams when GSO was refused"
    stop(net, "a")
    stop(net, "b")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="jumbo"),
        pytest.param(("--tun-offload", "off", "--udp-gro", "off"), id="jumbo-no-offload"),
        pytest.param(("--io", "mmsg"), id="jumbo-mmsg"),
        pytest.param(("--workers", "2", "--tun-offload", "off", "--udp-gro", "off"), id="jumbo-workers"),
    ],
)
def test_jumbo(net, args):
    """TUN MTU 9000 over a 1500 underlay: 8 KB inner packets in IP-fragmented ESP datagrams, with
    the given `espd run` arguments (packet slots are sized from the MTU, in every loop)."""
    cfg = net.configs("pair", "--inner", "4")
    set_mtu(cfg, 9000)
    pair_up(net, cfg, *args)
    a4, b4 = cfg.hosts["a"]["inner4"], cfg.hosts["b"]["inner4"]
    ping_ok(net, "a", b4, "-c", 3, "-s", 8000)
    ping_ok(net, "b", a4, "-c", 3, "-s", 8000)
    ping_ok(net, "a", b4, "-c", 2, "-s", 100)
    net.espds["espd-a"].stats()
    net.espds["espd-b"].stats()
    counter_ge(net, "b", "decapsulated", 5)
    counter_ge(net, "a", "decapsulated", 5)
    for k in ("malformed", "offload_dropped", "handoff_dropped"):
        counter_zero_if_present(net, "a", k)
        counter_zero_if_present(net, "b", k)
    stop(net, "a")
    stop(net, "b")


@pytest.mark.parametrize("alg", [pytest.param(a, id=f"alg-{a}") for a in ALGS])
def test_alg(net, alg):
    """One algorithm: pings (two sizes; CBC padding), iperf3 TCP for a few."""
    cfg = net.configs("pair", "--alg", alg, "--inner", "4,6")
    pair_up(net, cfg)
    h = cfg.hosts
    route_ok(net, "a", h["a"]["remote_ts"][0].split("/")[0])
    ping_ok(net, "a", h["b"]["inner4"], "-c", 3)
    ping_ok(net, "a", h["b"]["inner4"], "-c", 1, "-s", 1001)
    ping_ok(net, "b", h["a"]["inner6"], "-c", 2)
    if alg in ALGS_WITH_IPERF:
        iperf_ok(net, "tcp4", "b", "a", h["b"]["inner4"], 2)
    net.espds["espd-a"].stats()
    counter_ge(net, "a", "decapsulated", 3)
    counter_zero_if_present(net, "a", "auth_failed")
    stop(net, "a")
    stop(net, "b")


@named("transport")
def test_transport(net, name):
    """Transport mode through the aliases: each side's alias stands for the other."""
    cfg = net.configs("pair", "--mode", "transport", "--inner", "4")
    pair_up(net, cfg)
    alias_b = cfg.hosts["a"]["alias_of_peer"]  # on a, stands for b
    alias_a = cfg.hosts["b"]["alias_of_peer"]  # on b, stands for a
    b4 = cfg.hosts["b"]["inner4"]
    route_ok(net, "a", alias_b)
    route_ok(net, "b", alias_a)
    # UDP: b echoes; it must see a's datagrams as coming from its alias for a
    srv = udp_server(net, "b", "--port", 7000, "--count", 3, "--timeout", 10, "--echo")
    p = net.ns("a").tool(
        "udp-client", "--to", alias_b, "--port", 7000, "--payload", "transport-udp", "--count", 3
    )
    last = (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]
    assert p.returncode == 0, f"UDP a -> {alias_b}:7000: {last[0]}"
    net.wait_exit(srv, 2)
    srcs = sorted({d["from"] for d in json_lines(net, "udp", "datagram")})
    assert srcs == [alias_a], f"b saw the UDP datagrams from {srcs}, expected its alias for a ({alias_a})"
    ping_ok(net, "a", alias_b, "-c", 2)
    iperf_ok(net, "tcp", "b", "a", alias_b, 2)
    iperf_udp_ok(net, "udp", "b", "a", alias_b)
    net.info(f"b sees a's datagrams from {alias_a} (b's own address: {b4})")
    net.espds["espd-a"].stats()
    counter_ge(net, "a", "decapsulated", 3)
    counter_ge(net, "a", "encapsulated", 3)
    stop(net, "a")
    stop(net, "b")


# ------------------------------------------------------------------ espd: behind the NAT


@named("full-tunnel")
def test_full_tunnel(net, name):
    """remote_ts 0.0.0.0/0 on the client: its own ESP must not loop into its TUN."""
    cfg = net.configs("nat", "--clients", "1", "--inner", "4,6", "--full-tunnel", "c1")
    net.nat(1)
    cap = Capture(net.ns("gw"), "ul0", net.log("ul.pcapng"), net.procs)
    net.espd("gw", cfg)
    net.espd("c1", cfg)
    g4, g6 = cfg.hosts["gw"]["inner4"], cfg.hosts["gw"]["inner6"]
    route_ok(net, "c1", g4)
    route_ok(net, "c1", "198.51.100.200")  # any address without a more specific route goes into the tunnel
    ping_ok(net, "c1", g4, "-c", 3)
    ping_ok(net, "c1", g6, "-c", 2)
    # the gateway's outer address is inside 0.0.0.0/0 too: this ping goes through the tunnel
    ping_ok(net, "c1", GW_OUT4, "-c", 2)
    net.espds["espd-c1"].stats()
    counter_ge(net, "c1", "encapsulated", 7)
    cap.stop(margin=1)
    esp_up = cap.count(f"esp && ip.src=={NAT_OUT4} && ip.dst=={GW_OUT4} && udp.dstport==4500")
    esp_down = cap.count(f"esp && ip.src=={GW_OUT4} && ip.dst=={NAT_OUT4} && udp.srcport==4500")
    plain = cap.count("icmp || icmpv6.type==128 || icmpv6.type==129")
    assert esp_up >= 7, f"underlay: {esp_up} ESP packets client -> gateway, expected >= 7"
    assert esp_down >= 7, f"underlay: {esp_down} ESP packets gateway -> client, expected >= 7"
    assert plain == 0, f"underlay: {plain} plaintext ICMP echo packets (must all be inside ESP)"
    net.info(f"underlay: {esp_up} ESP up, {esp_down} down, no plaintext ICMP")
    stop(net, "c1")
    dev = net.ns("c1").route_dev(GW_OUT4)
    assert dev == "eth0", f"after espd exit, c1 routes {GW_OUT4} via '{dev}', not eth0"
    stop(net, "gw")


@named("nat-two-clients")
def test_nat_two_clients(net, name):
    """Two clients behind one NAT, both tunnels at once."""
    cfg = net.configs("nat", "--clients", "2", "--inner", "4,6")
    nat_up(net, cfg, 2)
    h = cfg.hosts
    g4, g6, c1, c2 = h["gw"]["inner4"], h["gw"]["inner6"], h["c1"]["inner4"], h["c2"]["inner4"]
    route_ok(net, "c1", g4)
    route_ok(net, "gw", c1)
    route_ok(net, "gw", c2)
    ping_ok(net, "c1", g4, "-c", 3)
    ping_ok(net, "c2", g4, "-c", 3)
    ping_ok(net, "c1", g6, "-c", 2)
    # the gateway learned both NAT'd endpoints from authenticated packets: it can start traffic now
    ping_ok(net, "gw", c1, "-c", 2)
    ping_ok(net, "gw", c2, "-c", 2)
    iperf_ok(net, "c1-tcp", "gw", "c1", g4, 2)
    iperf_ok(net, "c2-tcp", "gw", "c2", g4, 2)
    ct = net.topo.conntrack_udp(4500)
    ports = re.findall(rf"dst={re.escape(NAT_OUT4)} sport=4500 dport=(\d+)", ct)
    net.info(f"NAT ports {' '.join(ports)}")
    net.espds["espd-gw"].stats()
    counter_ge(net, "gw", "decapsulated", 10)
    counter_ge(net, "gw", "encapsulated", 10)
    counter_zero_if_present(net, "gw", "auth_failed")
    stop(net, "c1")
    stop(net, "c2")
    stop(net, "gw")


@named("keepalive")
def test_keepalive(net, name):
    """nat_keepalive_seconds 1 on the client: a 0xFF datagram about every second."""
    cfg = net.configs("nat", "--clients", "1", "--inner", "4", "--keepalive", "1")
    net.nat(1)
    cap = Capture(net.ns("gw"), "ul0", net.log("ul.pcapng"), net.procs, bpf="udp port 4500")
    net.espd("gw", cfg)
    net.espd("c1", cfg)
    time.sleep(3.5)
    net.espds["espd-gw"].stats()
    cap.stop(margin=1)
    flt = f"udpencap.nat_keepalive && ip.src=={NAT_OUT4} && ip.dst=={GW_OUT4} && udp.dstport==4500"
    rows = [
        line.split("\t")
        for line in cap.tshark("-Y", flt, "-T", "fields", "-e", "frame.time_relative", "-e", "udp.payload")
        .strip()
        .splitlines()
    ]
    with open(net.log("keepalives.txt"), "w") as f:
        f.write("\n".join("\t".join(r) for r in rows) + "\n")
    n = len(rows)
    assert 3 <= n <= 6, f"{n} keepalives reached the gateway in about 4 s, expected 3-6 (one a second)"
    # counted and dropped: nothing was written to the gateway's TUN
    rx = net.ns("gw").link_stats("espd0")["rx"]["packets"]
    assert rx == 0, f"the gateway's TUN received {rx} packets while only keepalives arrived"
    assert all(r[-1] == "ff" for r in rows), "a keepalive payload is not the single byte 0xff"
    times = [float(r[0]) for r in rows]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(0.5 <= d <= 1.6 for d in gaps), f"keepalive intervals are not about 1 s (at {times})"
    net.info(f"{n} keepalives at {' '.join(r[0] for r in rows)}")
    counter_ge(net, "gw", "keepalive", 3)
    counter_zero_if_present(net, "gw", "malformed")
    stop(net, "c1")
    stop(net, "gw")


@named("tshark")
def test_tshark(net, name):
    """The underlay carries only ESP in UDP 4500; tshark decrypts it with `espd keys`."""
    cfg = net.configs("pair", "--alg", "aes128gcm16", "--inner", "4,6")
    net.pair()
    cap = Capture(net.ns("a"), "ul0", net.log("ul.pcapng"), net.procs)
    net.espd("a", cfg)
    net.espd("b", cfg)
    b4, b6 = cfg.hosts["b"]["inner4"], cfg.hosts["b"]["inner6"]
    marker = f"ESPD-PLAINTEXT-MARKER-{secrets.token_hex(6)}"
    udp_server(net, "b", "--port", 7000, "--count", 2, "--timeout", 10, "--echo")
    p = net.ns("a").tool("udp-client", "--to", b4, "--port", 7000, "--payload", marker, "--count", 2)
    last = (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]
    assert p.returncode == 0, f"UDP with the marker a -> {b4}: {last[0]}"
    ping_ok(net, "a", b4, "-c", 2)
    ping_ok(net, "a", b6, "-c", 2)
    cap.stop(margin=1)
    # 1. nothing but UDP 4500 (and ARP / IPv6 neighbour discovery and MLD of the veth itself)
    other = cap.tshark(
        "-Y", "!arp && !(icmpv6.type in {130,131,132,133,134,135,136,137,143}) && !(udp.port==4500)"
    ).splitlines()
    assert not other, f"{len(other)} packets on the underlay are not UDP 4500, e.g. {other[0]}"
    n = cap.count("udp.port==4500 && !esp")
    assert n == 0, f"{n} UDP 4500 packets are not ESP"
    # 2. the marker never appears in the clear
    with open(cap.path, "rb") as f:
        assert marker.encode() not in f.read(), "the marker appears in plaintext in the capture"
    n = cap.count(f'frame contains "{marker}"')
    assert n == 0, f"tshark finds the marker in {n} frames without keys"
    # 3. with `espd keys`, tshark decrypts every ESP packet, ICV good, and finds the marker inside
    keys = run([net.espd_binary, "keys", "--config", cfg.path("a"), "--format", "wireshark"], check=False)
    assert keys.returncode == 0, f"espd keys failed: {(keys.stderr.strip().splitlines() or [''])[0]}"
    esp_sa = net.log("esp_sa")
    with open(esp_sa, "w") as f:
        f.write(keys.stdout)
    decrypted = cap.tshark(
        "-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE",
        "-Y", "esp", "-T", "fields", "-e", "esp.spi", "-e", "esp.icv_good", "-e", "esp.contained_data",
        esp_sa=esp_sa,
    ).splitlines()  # fmt: skip
    with open(net.log("decrypted.txt"), "w") as f:
        f.write("\n".join(decrypted) + "\n")
    total = len(decrypted)
    good = sum(1 for line in decrypted if len(f := line.split("\t")) >= 3 and f[1] == "1" and f[2] != "")
    hexmarker = marker.encode().hex()
    withmarker = sum(1 for line in decrypted if hexmarker in line.replace(":", "").lower())
    assert total >= 12, f"only {total} ESP packets captured (2 UDP + 4 pings, each way)"
    assert good == total, f"tshark decrypted {good} of {total} ESP packets with a good ICV"
    assert withmarker >= 4, (
        f"the marker is in {withmarker} decrypted packets, expected 4 (2 datagrams, 2 echoes)"
    )
    checker = os.path.join(REPO, "Tests", "Replay", "tshark_decrypt.py")
    if os.path.exists(checker):
        p = run([sys.executable, checker, cfg.path("a"), cap.path, esp_sa], check=False, timeout=120)
        first = next((x for x in (p.stdout + p.stderr).splitlines() if " - " in x), "")
        assert p.returncode == 0, f"Tests/Replay/tshark_decrypt.py: {first}"
    net.info(f"{total} ESP packets, all decrypted (ICV good), marker in {withmarker}, none in the clear")
    stop(net, "a")
    stop(net, "b")


@named("shutdown")
def test_shutdown(net, name):
    """SIGTERM during an iperf3 run: exit 0 within 1 s, no TUN left, routes gone."""
    cfg = net.configs("pair", "--inner", "4")
    pair_up(net, cfg)
    b4 = cfg.hosts["b"]["inner4"]
    ping_ok(net, "a", b4, "-c", 1)
    net.bg("iperf-server", "b", ["iperf3", "-s", "-1", "-p", "5201"])
    try:
        wait_for(lambda: net.ns("b").tcp_listening(5201), 5, what="iperf3 -s")
    except TimeoutError:
        raise AssertionError("iperf3 server did not start") from None
    client = net.bg(
        "iperf-client", "a", ["iperf3", "-c", b4, "-p", "5201", "-t", "6", "--connect-timeout", "3000"]
    )
    time.sleep(1.5)
    assert client.poll() is None, (
        f"iperf3 was not running when SIGTERM was sent: {net.tail('iperf-client.err', 1)}"
    )
    espd = net.espds["espd-a"]
    rc, ms = espd.terminate(1)
    if rc is None:
        if net.wait_exit(espd.proc, 5) is None:
            espd.kill()
        raise AssertionError("espd did not exit within 1 s of SIGTERM during iperf3")
    assert rc == 0, f"espd exited {rc} after SIGTERM: {espd.why()}"
    net.info(f"exited {rc} {ms} ms after SIGTERM under load")
    assert espd.stats_lines(), 'no {"stats":...} line on stdout at exit'
    gone = net.ns("a").wait_no_tun(1)
    assert gone is not None, f"TUN device left 1 s after exit: {net.ns('a').tun_devices()}"
    if gone >= 50:
        net.info(f"TUN gone {gone} ms after exit")
    assert not net.ns("a").link_exists("espd0"), "espd0 still exists in a"
    assert net.ns("a").route_dev(b4) != "espd0", f"route to {b4} via espd0 still there"
    stop(net, "b")


@named("ike-punt")
def test_ike_punt(net, name):
    """A datagram with the non-ESP marker goes to the IKE responder and its reply comes back."""
    cfg = net.configs("nat", "--clients", "1", "--inner", "4", "--ike-punt", "udp:127.0.0.1:4501")
    net.nat(1)
    net.python_bg("ike", "gw", RESPONDER, "--listen", "udp:127.0.0.1:4501", "--timeout", 60)
    try:
        wait_for(lambda: '"listening"' in net.read("ike.out"), 3, what="ike_responder.py")
    except TimeoutError:
        raise AssertionError(f"ike_responder.py did not start: {net.tail('ike.err')}") from None
    net.espd("gw", cfg)
    reply, rc = net.ns("c1").tool_json("ike-client", "--to", GW_OUT4, "--port", 4500, "--timeout", 3)
    assert rc == 0, f"IKE round trip: {reply}"
    requests = json_lines(net, "ike", "request")
    if not requests:
        ignored = [e.get("reason") for e in json_lines(net, "ike", "ignored")][:1]
        raise AssertionError(f"the responder got no punted request ({ignored})")
    req = requests[0]
    ok = (
        req.get("family") == 4
        and req.get("src") == NAT_OUT4
        and req.get("dst") == GW_OUT4
        and req.get("dport") == 4500
        and req.get("ike", {}).get("exchange") == 34
        and req.get("len") == 28
    )
    assert ok, f"punt header/message not as sent: {req}"
    net.espds["espd-gw"].stats()
    counter_ge(net, "gw", "ike", 1)
    stop(net, "gw")
