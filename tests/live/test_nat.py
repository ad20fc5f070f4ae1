"""Issue 15, 6: the NAT rebinds (conntrack flushed, new source ports): traffic and IKE follow."""

import re
import time

import pytest

from livelab import client_child, client_conn, gw_child, gw_conn
from livenet import GW_INNER, ping, ping_until

pytestmark = pytest.mark.strongswan


def test_nat_rebinding(lab, record_property):
    # no MOBIKE: an address update from the client would tell the gateway the new port too
    gw = lab.gateway({"rw": gw_conn({"net": gw_child()}, lab.ike500, mobike="no")})
    cl = lab.client(None)
    # no DPD from the client: only its ESP tells the gateway where it went
    cl.load(
        {
            "connections": {
                "gw": client_conn(
                    {"net": client_child(f"{cl.addr}/32")}, lab.ike500, "c1.example", mobike="no"
                )
            }
        }
    )
    cl.initiate("net")
    ns = lab.topo.clients[0]
    assert ping(ns, GW_INNER, src=cl.addr, count=2, interval=0.2)[0] == 2
    (tunnel,) = gw.espd.tunnels()
    old_peer = tunnel["peer"]

    lab.topo.set_masquerade("meta l4proto udp masquerade to :40000-40100", "masquerade")
    lab.topo.flush_conntrack()
    t0 = time.monotonic()
    ping_until(ns, GW_INNER, src=cl.addr, timeout=10)
    resumed = time.monotonic() - t0
    (tunnel,) = gw.espd.tunnels()
    new_peer = tunnel["peer"]
    host, port = new_peer.rsplit(":", 1)
    assert host == "192.0.2.2" and 40000 <= int(port) <= 40100, (old_peer, new_peer)
    print(f"\nNAT rebinding: traffic back in {resumed:.1f} s, espd's peer {old_peer} -> {new_peer}")
    record_property("traffic_back_seconds", round(resumed, 1))
    record_property("peer_moved", f"{old_peer} -> {new_peer}")

    # the gateway's charon must now send its IKE to the new port: a rekey it starts succeeds
    mark = gw.charon.mark()
    (child,) = gw.charon.children("net")
    gw.charon.swanctl("--rekey", "--child", "net")
    # (espd's `peer` event made kernel-espd call kernel->mapping(), which moved the IKE_SA)
    gw.charon.wait_for_log(r"CHILD_SA net\{\d+\} established", 12, since=mark)
    (new_child,) = gw.charon.children("net")
    assert new_child["spi_in"] != child["spi_in"]
    (ike,) = gw.charon.list_sas()
    assert ike["remote"]["port"] == int(port), ike["remote"]
    assert ping(ns, GW_INNER, src=cl.addr, count=2, interval=0.2)[0] == 2
    moved = re.search(r"kernel-espd: tunnel \S+: peer .*", gw.charon.log())
    print(f"gateway IKE followed to port {port}: {moved[0] if moved else '(no kernel-espd peer line)'}")
    record_property("ike_rekey_after_move", "ok")
