"""Issue 15, kernel-espd's update_sa: a client moves to another address (MOBIKE); the gateway's
charon updates the CHILD_SA, kernel-espd tells espd (`update_tunnel`), and espd sends to the new
NAT port before the client sent any ESP from there."""

import time

import pytest

from livelab import client_child, client_conn, gw_child, gw_conn
from livenet import GW_INNER, ping
from liveproc import wait_for

pytestmark = pytest.mark.strongswan

POOL = "203.0.113.128/25"


def test_mobike_moves_espds_peer(lab, record_property):
    gw = lab.gateway(
        {"rw": gw_conn({"net": gw_child("dynamic")}, lab.ike500, pools="vpool", dpd_delay="2s")},
        pools={"vpool": {"addrs": POOL}},
    )
    conn = client_conn({"net": client_child("dynamic")}, lab.ike500, "c1.example", vips="0.0.0.0")
    cl = lab.client({"gw": conn})
    cl.initiate("net")
    ns = lab.topo.clients[0]
    (ike,) = cl.list_sas()
    vip = ike["local"]["vip"]
    assert ping(ns, GW_INNER, src=vip, count=2, interval=0.2)[0] == 2
    (tunnel,) = gw.espd.tunnels()
    old_peer = tunnel["peer"]
    iface = f"{lab.topo.prefix}c1"

    # the client's outer address changes: the NAT maps the new one to another port
    mark = gw.charon.mark()
    ns.exec(["sysctl", "-qw", f"net.ipv4.conf.{iface}.promote_secondaries=1"])
    ns.ip("addr", "add", "203.0.113.20/26", "dev", iface)
    ns.ip("addr", "del", f"{ns.addr}/26", "dev", iface)
    ns.ip("route", "replace", "default", "via", "203.0.113.1", "src", "203.0.113.20")
    t0 = time.monotonic()
    gw.charon.wait_for_log(r"kernel-espd: tunnel \S+ .*(moved|peer).*192\.0\.2\.2", 20, since=mark)

    def moved():
        (t,) = gw.espd.tunnels()
        return t["peer"] if t["peer"] != old_peer else None

    new_peer = wait_for(moved, 10, what="espd's peer to move")
    took = time.monotonic() - t0
    # the gateway speaks first: espd must already send to the new port
    received, sent = ping(lab.topo.gw, vip, src=GW_INNER, count=3, interval=0.2)
    assert received == sent == 3, (received, sent, old_peer, new_peer)
    # kernel-espd told espd (update_tunnel), as charon's update_sa asked
    assert f"update_tunnel {tunnel['name']} peer {new_peer}" in gw.espd.log(), gw.espd.log()[-2000:]
    (ike,) = gw.charon.list_sas()
    assert f"{ike['remote']['addr']}:{ike['remote']['port']}" == new_peer, (ike["remote"], new_peer)
    print(f"\nMOBIKE: espd's peer {old_peer} -> {new_peer} in {took:.1f} s; gateway -> VIP {vip} ping 3/3")
    record_property("peer_moved", f"{old_peer} -> {new_peer}")
