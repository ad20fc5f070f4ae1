# SPDX-License-Identifier: Apache-2.0
"""Issue 15: IKEv1 L2TP/IPsec, two clients behind one NAT, live.

    c1 203.0.113.10 ─┐                                   gw 192.0.2.1:500/4500
                     ├─ nat 203.0.113.1 │ 192.0.2.2 ───── charon + espd, TUN 198.51.100.1/24
    c2 203.0.113.11 ─┘   (nftables masquerade)           udp echo service on 198.51.100.1:1701

Every host runs charon with kernel-espd and socket-espd and espd as its dataplane. The clients
negotiate as Windows does: IKEv1 main mode, PSK, aes256-sha1-modp2048, ESP aes256-sha1 or
aes128-sha1 in transport mode, IKE from port 500 floating to 4500. No key is written by hand.

Both clients have the same TUN address (198.51.100.50) and send identical udp 1701 -> 1701 flows
to the gateway's alias on their side; the gateway's service must see two different alias source
addresses (from `transport_alias_pool`), and each client must get only its own replies.

    sudo ESPD=/path/to/espd python3 -m pytest tests/live/test_l2tp_ikev1.py
    (ESPD_SWAN_PLUGIN_DIR=DIR: use the plugins built in DIR instead of the installed ones;
     ESPD_LIVE_KEEP=1: keep the work directory)
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l2tp_helpers as h  # noqa: E402

GW_OUT, NAT_OUT, NAT_IN = "192.0.2.1", "192.0.2.2", "203.0.113.1"
GW_TUN = "198.51.100.1"
GW_POOL = "198.51.100.128/25"
CLIENT_TUN = "198.51.100.50"
CLIENT_POOL = "198.51.100.0/30"  # the gateway's alias on a client: 198.51.100.1
CLIENTS = {"c1": "203.0.113.10", "c2": "203.0.113.11"}
PSK = "espd l2tp test only"
COUNT = 30
BUDGET = 90  # seconds for the whole test (SIGALRM); cleanup runs after it

GW_SWANCTL = f"""connections {{
  l2tp {{
    version = 1
    local_addrs = {GW_OUT}
    proposals = aes256-sha1-modp2048
    local {{ auth = psk }}
    remote {{ auth = psk }}
    children {{
      l2tp {{
        mode = transport
        local_ts = dynamic[udp/1701]
        remote_ts = dynamic[udp]
        esp_proposals = aes256-sha1, aes128-sha1
      }}
    }}
  }}
}}
secrets {{
  ike-l2tp {{
    secret = "{PSK}"
  }}
}}
"""


def client_swanctl(esp: str) -> str:
    return f"""connections {{
  gw {{
    version = 1
    remote_addrs = {GW_OUT}
    proposals = aes256-sha1-modp2048
    local {{ auth = psk }}
    remote {{ auth = psk }}
    children {{
      l2tp {{
        mode = transport
        local_ts = dynamic[udp/1701]
        remote_ts = dynamic[udp/1701]
        esp_proposals = {esp}
      }}
    }}
  }}
}}
secrets {{
  ike-gw {{
    secret = "{PSK}"
  }}
}}
"""


# c1 offers what Windows offers first, c2 only the second choice: both must work
CLIENT_ESP = {"c1": "aes256-sha1, aes128-sha1", "c2": "aes128-sha1"}


def build_topology(lab: h.Lab) -> None:
    lab.add_ns("gw", "nat", *CLIENTS)
    lab.veth("gw", "ul0", "nat", "wan0")
    lab.ip("gw", "addr", "add", f"{GW_OUT}/24", "dev", "ul0")
    lab.ip("nat", "addr", "add", f"{NAT_OUT}/24", "dev", "wan0")
    lab.ip("nat", "link", "add", "br0", "type", "bridge")
    lab.ip("nat", "link", "set", "br0", "up")
    lab.ip("nat", "addr", "add", f"{NAT_IN}/24", "dev", "br0")
    for i, (c, addr) in enumerate(CLIENTS.items(), 1):
        lab.veth("nat", f"lan{i}", c, "eth0")
        lab.ip("nat", "link", "set", f"lan{i}", "master", "br0")
        lab.ip(c, "addr", "add", f"{addr}/24", "dev", "eth0")
        lab.ip(c, "route", "add", "default", "via", NAT_IN)
    lab.run("nat", "sysctl", "-qw", "net.ipv4.ip_forward=1")
    rules = ("table ip l2tp_nat {\n chain postrouting {\n  type nat hook postrouting priority srcnat;\n"
             "  ip saddr 203.0.113.0/24 oifname \"wan0\" masquerade\n }\n}\n")
    h.sh("ip", "netns", "exec", lab.ns("nat"), "nft", "-f", "-", input=rules)


@pytest.fixture
def lab():
    why = h.missing_prerequisites()
    if why:
        pytest.skip(why)
    lab = h.Lab("l2tp")

    def too_long(signum, frame):
        raise TimeoutError(f"the test ran for {BUDGET} s")

    old = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(BUDGET)
    try:
        yield lab
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        # the work directory (configs, logs) stays when the test did not reach its end
        lab.close(keep=not lab.passed or bool(os.environ.get("ESPD_LIVE_KEEP")))


def test_l2tp_ikev1_two_clients_behind_one_nat(lab: h.Lab) -> None:
    t0 = time.monotonic()
    hosts = {"gw": (f"{GW_OUT}:4500", f"{GW_OUT}:500", f"{GW_TUN}/24", GW_POOL)}
    for c, addr in CLIENTS.items():
        hosts[c] = (f"{addr}:4500", f"{addr}:500", f"{CLIENT_TUN}/32", CLIENT_POOL)
    for short, args in hosts.items():
        cfg = lab.espd_config(short, *args)
        r = lab.espd_check(cfg)
        if r.returncode != 0:
            pytest.skip(f"this espd refuses ike.listen/punt_local (ESPD-EXTENSIONS items 1-2): "
                        f"{(r.stdout + r.stderr).strip()[:300]}")
    lab.charon_config("gw", GW_SWANCTL)
    for c in CLIENTS:
        lab.charon_config(c, client_swanctl(CLIENT_ESP[c]))

    build_topology(lab)

    # charon binds the punt socket, espd connects to it at start: charon first
    for short in hosts:
        lab.start_charon(short)
    assert h.wait_for(lambda: all((lab.host_dir(s) / n).exists() for s in hosts
                                  for n in ("ike.sock", "charon.vici")), 10), \
        "charon did not come up: " + " | ".join(lab.log(s)[-600:] for s in hosts)
    for short in hosts:
        lab.start_espd(short)
    assert h.wait_for(lambda: all("kernel-espd: subscribed to espd's events" in lab.log(s) for s in hosts), 10), \
        "kernel-espd did not reach espd: " + " | ".join(lab.out(f"espd-{s}")[-600:] for s in hosts)
    for short in hosts:
        r = lab.swanctl(short, "--load-all", "--file", str(lab.host_dir(short) / "swanctl.conf"))
        assert r.returncode == 0, f"{short}: swanctl --load-all: {r.stdout}{r.stderr}"

    echo = lab.spawn_in("gw", "echo", [*h.NICE, sys.executable, "-c", h.ECHO_SERVER, GW_TUN, "1701"])
    assert h.wait_for(lambda: '"listening"' in lab.out("echo"), 10), f"echo service: {lab.out('echo')}"

    # both clients at once, as charon negotiates everything
    inits = {c: lab.spawn("initiate-" + c, ["timeout", "40", "swanctl", "--initiate", "--uri",
                                            f"unix://{lab.host_dir(c)}/charon.vici", "--child", "l2tp",
                                            "--timeout", "30"])
             for c in CLIENTS}
    for c, p in inits.items():
        p.wait(45)
        assert p.returncode == 0, (f"{c}: swanctl --initiate failed: {lab.out('initiate-' + c)[-800:]}\n"
                                   f"--- {c} charon.log ---\n{lab.log(c)[-3000:]}\n"
                                   f"--- gw charon.log ---\n{lab.log('gw')[-3000:]}")

    # each client: one transport tunnel in its espd, the gateway's alias from its pool
    client_alias = {}
    for c in CLIENTS:
        tunnels = lab.espd_ctl(c, "tunnel", "list")["tunnels"]
        assert len(tunnels) == 1 and tunnels[0]["mode"] == "transport", f"{c}: espd tunnels {tunnels}"
        client_alias[c] = tunnels[0]["alias"]
        assert ipaddress.ip_address(client_alias[c]) in ipaddress.ip_network(CLIENT_POOL)

    # identical udp 198.51.100.50:1701 -> alias:1701 flows from both clients at once
    flows = {c: lab.spawn_in(c, "flow-" + c, [*h.NICE, sys.executable, "-c", h.FLOW, CLIENT_TUN, "1701",
                                             client_alias[c], "1701", c, str(COUNT), "0.05", "2"])
             for c in CLIENTS}
    results = {}
    for c, p in flows.items():
        p.wait(30)
        results[c] = json.loads(lab.out("flow-" + c).strip().splitlines()[-1])

    # the gateway's service saw each client under its own alias, from port 1701
    seen: dict[str, set[str]] = {}
    for line in lab.out("echo").splitlines():
        ev = json.loads(line)
        if "from" in ev:
            assert ev["port"] == 1701, f"service saw source port {ev['port']}"
            seen.setdefault(ev["text"].split(":")[0], set()).add(ev["from"])
    assert set(seen) == set(CLIENTS), f"tags the service saw: {seen}"
    for c in CLIENTS:
        assert len(seen[c]) == 1, f"{c} came from several addresses: {seen[c]}"
        assert ipaddress.ip_address(next(iter(seen[c]))) in ipaddress.ip_network(GW_POOL)
    gw_alias = {c: next(iter(seen[c])) for c in CLIENTS}
    assert gw_alias["c1"] != gw_alias["c2"], f"both clients seen as {gw_alias['c1']}"

    # each client got replies, only its own, from its alias for the gateway
    for c in CLIENTS:
        r = results[c]
        assert r["sent"] == COUNT
        assert list(r["replies"]) == [f"{client_alias[c]}:1701"], f"{c}: replies from {list(r['replies'])}"
        texts = r["replies"][f"{client_alias[c]}:1701"]
        assert all(t.startswith(f"echo:{c}:") for t in texts), f"{c} got others' replies: {texts[:5]}"
        assert len(texts) >= COUNT - 2, f"{c}: {len(texts)} of {COUNT} replies"

    # the gateway's espd: two transport tunnels with those aliases and swanctl's SPIs
    tunnels = lab.espd_ctl("gw", "tunnel", "list")["tunnels"]
    assert len(tunnels) == 2 and all(t["mode"] == "transport" for t in tunnels), f"gateway tunnels: {tunnels}"
    assert {t["alias"] for t in tunnels} == set(gw_alias.values())
    sas = lab.swanctl("gw", "--list-sas")
    pairs = h.child_spis(sas.stdout)
    assert len(pairs) == 2, f"gateway swanctl --list-sas:\n{sas.stdout}"
    espd_pairs = {(format(int(t["inbound"][0]["spi"], 16), "08x"), format(int(t["outbound"]["spi"], 16), "08x"))
                  for t in tunnels if len(t["inbound"]) == 1}
    assert espd_pairs == set(pairs), f"espd {espd_pairs} vs swanctl {pairs}"
    # kernel-espd logs the alias espd took for each tunnel
    logged = re.findall(r"kernel-espd: tunnel (\S+) \(reqid \d+, transport mode, peer [^)]*\) added to espd "
                        r"with SPIs [0-9a-f]{8}_i [0-9a-f]{8}_o, alias (\S+)", lab.log("gw"))
    assert set(logged) == {(t["name"], t["alias"]) for t in tunnels}, f"logged aliases {logged}"
    # and each client's SAs mirror one of them
    for c in CLIENTS:
        (cin, cout), = h.child_spis(lab.swanctl(c, "--list-sas").stdout)
        assert (cout, cin) in espd_pairs, f"{c}: SPIs {cin}_i {cout}_o not on the gateway"

    # c1 leaves: the gateway deletes c1's tunnel, not c2's (both CHILD_SAs have the same reqid and
    # selectors on the gateway; only the NAT port tells them apart), and c2 still gets its replies
    r = lab.swanctl("c1", "--terminate", "--ike", "gw", "--timeout", "10")
    assert r.returncode == 0, f"c1: swanctl --terminate: {r.stdout}{r.stderr}"
    assert h.wait_for(lambda: len(lab.espd_ctl("gw", "tunnel", "list")["tunnels"]) == 1, 10), \
        f"gateway tunnels after c1 left: {lab.espd_ctl('gw', 'tunnel', 'list')['tunnels']}"
    (left,) = lab.espd_ctl("gw", "tunnel", "list")["tunnels"]
    assert left["alias"] == gw_alias["c2"], f"the gateway kept {left['alias']}, c2 is {gw_alias['c2']}"
    assert lab.espd_ctl("c1", "tunnel", "list")["tunnels"] == []
    p = lab.spawn_in("c2", "flow-c2-after", [*h.NICE, sys.executable, "-c", h.FLOW, CLIENT_TUN, "1701",
                                            client_alias["c2"], "1701", "c2b", "10", "0.05", "1"])
    p.wait(30)
    after = json.loads(lab.out("flow-c2-after").strip().splitlines()[-1])
    assert len(after["replies"].get(f"{client_alias['c2']}:1701", [])) >= 8, f"c2 after c1 left: {after}"

    assert echo.poll() is None, "echo service died"
    assert time.monotonic() - t0 < BUDGET
    lab.passed = True
