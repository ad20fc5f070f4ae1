# SPDX-License-Identifier: Apache-2.0
"""Issue 15: IKEv1 L2TP/IPsec, two clients behind one NAT, live.

    c1 203.0.113.10 ─┐                                   gw 192.0.2.1:500/4500
                     ├─ nat 203.0.113.1 │ 192.0.2.2 ───── charon + espd, TUN 198.51.100.1/24
    c2 203.0.113.11 ─┘   (nftables masquerade)           udp echo service on 198.51.100.1:1701

Every host runs charon with kernel-espd and socket-espd and espd as its dataplane (lab.gateway,
livehost.espd_client). The clients negotiate as Windows does: IKEv1 main mode, PSK,
aes256-sha1-modp2048, ESP aes256-sha1 or aes128-sha1 in transport mode, IKE from port 500
floating to 4500. No key is written by hand.

Both clients have the same TUN address (198.51.100.50) and send identical udp 1701 -> 1701 flows
to the gateway's alias on their side; the gateway's service must see two different alias source
addresses (from `transport_alias_pool`), and each client must get only its own replies. Then c1
leaves (only its tunnel goes on the gateway) and c2 rekeys its CHILD_SA (quick mode): its tunnel
keeps its alias and takes the new SAs, and its traffic goes on.

    sudo ESPD=/path/to/espd python3 -m pytest tests/live/test_l2tp_ikev1.py
    (ESPD_SWAN_PLUGIN_DIR=DIR: use the plugins built in DIR instead of the installed ones;
     KEEP=1: keep the work directory)
"""

import ipaddress
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from liveespd import spi_set
from livehost import espd_client
from livenet import GW_ADDR, GW_INNER
from liveproc import time_limit, wait_for
from liveudp import UdpEcho, UdpFlow

pytestmark = pytest.mark.strongswan

GW_POOL = "198.51.100.128/25"
CLIENT_TUN = "198.51.100.50"
CLIENT_POOL = "198.51.100.0/30"  # the gateway's alias on a client: 198.51.100.1
CLIENTS = ("c1", "c2")
# c1 offers what Windows offers first, c2 only the second choice: both must work
CLIENT_ESP = {"c1": "aes256-sha1, aes128-sha1", "c2": "aes128-sha1"}
COUNT = 30
BUDGET = 90  # seconds for the whole test (SIGALRM); cleanup runs after it


def l2tp_conn(remote_ts, esp, **addrs):
    """IKEv1 main mode with a PSK, one transport-mode CHILD_SA "l2tp" for udp/1701."""
    child = {
        "mode": "transport",
        "local_ts": "dynamic[udp/1701]",
        "remote_ts": remote_ts,
        "esp_proposals": esp,
    }
    return {
        "version": 1,
        **addrs,
        "proposals": "aes256-sha1-modp2048",
        "local": {"auth": "psk"},
        "remote": {"auth": "psk"},
        "children": {"l2tp": child},
    }


def children(charon):
    """Every CHILD_SA of swanctl --list-sas, whatever its state."""
    return [child for ike in charon.list_sas() for child in ike["children"]]


@pytest.fixture
def budget(lab):
    if not lab.ike500:
        why = lab.session.ike500_why[:300]
        pytest.skip(f"this espd refuses ike.listen/punt_local (ESPD-EXTENSIONS items 1-2): {why}")
    with time_limit(BUDGET):
        yield time.monotonic()


def test_l2tp_ikev1_two_clients_behind_one_nat(lab, budget) -> None:
    t0 = budget
    gw = lab.gateway(
        {"l2tp": l2tp_conn("dynamic[udp]", "aes256-sha1, aes128-sha1", local_addrs=GW_ADDR)},
        espd={"transport_alias_pool": GW_POOL},
    )
    clients = {
        c: espd_client(
            lab,
            {"gw": l2tp_conn("dynamic[udp/1701]", CLIENT_ESP[c], remote_addrs=GW_ADDR)},
            f"{CLIENT_TUN}/32",
            espd={"transport_alias_pool": CLIENT_POOL},
        )
        for c in CLIENTS
    }
    echo = UdpEcho(lab.topo.gw, GW_INNER, 1701, lab.procs, lab.dir)

    # both clients at once, as charon negotiates everything
    with ThreadPoolExecutor(len(clients)) as pool:
        inits = {
            c: pool.submit(h.charon.initiate, "l2tp", timeout=30, check=False) for c, h in clients.items()
        }
    for c, f in inits.items():
        r = f.result()
        assert r.returncode == 0, (
            f"{c}: swanctl --initiate failed: {(r.stdout + r.stderr)[-800:]}\n"
            f"--- {c} charon.log ---\n{clients[c].charon.log()[-3000:]}\n"
            f"--- gw charon.log ---\n{gw.charon.log()[-3000:]}"
        )

    # each client: one transport tunnel in its espd, the gateway's alias from its pool
    client_alias = {}
    for c, h in clients.items():
        tunnels = h.espd.cli_list()
        assert len(tunnels) == 1 and tunnels[0]["mode"] == "transport", f"{c}: espd tunnels {tunnels}"
        client_alias[c] = tunnels[0]["alias"]
        assert ipaddress.ip_address(client_alias[c]) in ipaddress.ip_network(CLIENT_POOL)

    # identical udp 198.51.100.50:1701 -> alias:1701 flows from both clients at once
    flows = {
        c: UdpFlow(h.ns, CLIENT_TUN, 1701, client_alias[c], 1701, c, lab.procs, lab.dir, count=COUNT)
        for c, h in clients.items()
    }
    results = {c: f.result(30) for c, f in flows.items()}

    # the gateway's service saw each client under its own alias, from port 1701
    seen: dict[str, set[str]] = {}
    for ev in echo.events():
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
    tunnels = gw.espd.cli_list()
    assert len(tunnels) == 2 and all(t["mode"] == "transport" for t in tunnels), f"gateway tunnels: {tunnels}"
    assert {t["alias"] for t in tunnels} == set(gw_alias.values())
    pairs = [(child["spi_in"], child["spi_out"]) for child in children(gw.charon)]
    assert len(pairs) == 2, f"gateway swanctl --list-sas: {gw.charon.list_sas()}"
    espd_pairs = {(min(spi_in), spi_out) for spi_in, spi_out in map(spi_set, tunnels) if len(spi_in) == 1}
    assert espd_pairs == set(pairs), f"espd {espd_pairs} vs swanctl {pairs}"
    # kernel-espd logs the alias espd took for each tunnel
    logged = re.findall(
        r"kernel-espd: tunnel (\S+) \(reqid \d+, transport mode, peer [^)]*\) added to espd "
        r"with SPIs [0-9a-f]{8}_i [0-9a-f]{8}_o, alias (\S+)",
        gw.charon.log(),
    )
    assert set(logged) == {(t["name"], t["alias"]) for t in tunnels}, f"logged aliases {logged}"
    # and each client's SAs mirror one of them
    for c, h in clients.items():
        (child,) = children(h.charon)
        assert (child["spi_out"], child["spi_in"]) in espd_pairs, f"{c}: SPIs {child} not on the gateway"

    # c1 leaves: the gateway deletes c1's tunnel, not c2's (both CHILD_SAs have the same reqid and
    # selectors on the gateway; only the NAT port tells them apart), and c2 still gets its replies
    r = clients["c1"].charon.swanctl("--terminate", "--ike", "gw", "--timeout", "10", check=False)
    assert r.returncode == 0, f"c1: swanctl --terminate: {r.stdout}{r.stderr}"
    try:
        wait_for(lambda: len(gw.espd.cli_list()) == 1, 10, what="the gateway to delete c1's tunnel")
    except TimeoutError:
        raise AssertionError(f"gateway tunnels after c1 left: {gw.espd.cli_list()}") from None
    (left,) = gw.espd.cli_list()
    assert left["alias"] == gw_alias["c2"], f"the gateway kept {left['alias']}, c2 is {gw_alias['c2']}"
    assert clients["c1"].espd.cli_list() == []
    c2, alias = clients["c2"], client_alias["c2"]

    # c2 rekeys its CHILD_SA (IKEv1 quick mode, as Windows does every hour): the gateway's tunnel
    # keeps its alias and takes the new SAs (charon keeps the rekeyed inbound SA until it expires,
    # charon.delete_rekeyed = no), and c2's traffic goes on under the new outbound SA
    old_in, old_out = spi_set(left)
    r = c2.charon.swanctl("--rekey", "--child", "l2tp", check=False)
    assert r.returncode == 0, f"c2: swanctl --rekey: {r.stdout}{r.stderr}"

    def rekeyed():
        (t,) = gw.espd.cli_list()
        spi_in, spi_out = spi_set(t)
        return t if spi_in - old_in and spi_out != old_out else None

    try:
        left = wait_for(rekeyed, 15, what="the gateway's tunnel to take c2's new SAs")
    except TimeoutError:
        raise AssertionError(f"gateway tunnel after c2's rekey: {gw.espd.cli_list()}") from None
    assert left["alias"] == gw_alias["c2"], f"alias {left['alias']} after the rekey, was {gw_alias['c2']}"
    new_pairs = {(child["spi_in"], child["spi_out"]) for child in children(gw.charon)}
    (new_in,) = spi_set(left)[0] - old_in
    assert (new_in, spi_set(left)[1]) in new_pairs, f"espd {spi_set(left)} vs swanctl {new_pairs}"
    flow = UdpFlow(c2.ns, CLIENT_TUN, 1701, alias, 1701, "c2b", lab.procs, lab.dir, count=10, linger=1)
    after = flow.result(30)
    assert len(after["replies"].get(f"{alias}:1701", [])) >= 8, f"c2 after c1 left: {after}"

    assert echo.alive(), "echo service died"
    assert time.monotonic() - t0 < BUDGET
