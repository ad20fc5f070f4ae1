"""Issue 15, 2: three clients behind one NAT at once, each with a virtual IP from the pool."""

import ipaddress

import pytest

from livelab import client_child, client_conn, gw_child, gw_conn
from livenet import GW_INNER, ping

pytestmark = pytest.mark.strongswan

POOL = "203.0.113.128/25"


def test_three_clients_vip_behind_one_nat(lab, record_property):
    gw = lab.gateway(
        {"rw": gw_conn({"net": gw_child("dynamic")}, lab.ike500, pools="vpool")},
        pools={"vpool": {"addrs": POOL}},
    )
    clients = []
    for i in range(3):
        conn = client_conn({"net": client_child("dynamic")}, lab.ike500, f"c{i + 1}.example", vips="0.0.0.0")
        clients.append(lab.client({"gw": conn}))
    for cl in clients:
        cl.initiate("net")
    vips = []
    for cl in clients:
        (ike,) = cl.list_sas()
        vip = ike["local"]["vip"]
        assert vip and ipaddress.ip_address(vip) in ipaddress.ip_network(POOL), ike
        vips.append(vip)
    assert len(set(vips)) == 3, vips
    results = []
    for ns, vip in zip(lab.topo.clients, vips, strict=True):
        received, sent = ping(ns, GW_INNER, src=vip, count=3, interval=0.2)
        results.append(received)
        assert received == sent, (vip, received, sent)
    tunnels = gw.espd.tunnels()
    assert sorted(t["remote_ts"] for t in tunnels) == sorted([[f"{v}/32"] for v in vips])
    peers = sorted(t["peer"] for t in tunnels)
    assert all(p.startswith("192.0.2.2:") for p in peers) and len(set(peers)) == 3, peers
    print(f"\nthree clients: VIPs {vips}, espd peers {peers}, pings {results}")
    record_property("vips", vips)
    record_property("peers", peers)
