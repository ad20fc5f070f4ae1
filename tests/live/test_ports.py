"""Issue 15, 3: socket-espd on custom ports. IKE on a port other than 500 travels behind the
non-ESP marker from the first message (RFC 3948; charon adds and strips it whenever neither port
is 500), so the port is an espd `listen` port like 4500, beside ESP."""

import os

import pytest

from liveespd import spi_set
from livelab import client_child, client_conn, gw_child, gw_conn
from livenet import GW_ADDR, GW_INNER, ping

pytestmark = pytest.mark.strongswan

PORT = 4501


def test_custom_ike_port(lab, record_property):
    d = os.path.join(lab.dir, "gw")
    gw = lab.gateway(
        {"rw": gw_conn({"net": gw_child()}, False, local_port=PORT)},
        charon={"port": PORT, "port_nat_t": PORT},
        espd={"listen": [f"{GW_ADDR}:{PORT}"], "ike": {"punt": f"unix:{d}/ike.sock"}},
        pin_espd=False,
    )
    cl = lab.client(None)
    conn = client_conn({"net": client_child(f"{cl.addr}/32")}, False, "c1.example", remote_port=PORT)
    cl.load({"connections": {"gw": conn}})
    cl.initiate("net")
    (child,) = gw.charon.children("net")
    (tunnel,) = gw.espd.tunnels()
    assert spi_set(tunnel) == ({child["spi_in"]}, child["spi_out"]), (tunnel, child)
    received, sent = ping(lab.topo.clients[0], GW_INNER, src=cl.addr, count=3, interval=0.2)
    assert received == sent == 3
    stats = gw.espd.stats()
    (ike,) = gw.charon.list_sas()
    assert ike["local"]["port"] == PORT, ike["local"]
    print(f"\ncustom port {PORT}: IKE_SA {ike['local']['addr']}[{ike['local']['port']}], ping 3/3")
    record_property("ike_punted", stats.get("ike_punted"))
