"""Issue 15, 8: what espd cannot do or refuses, and garbage on the punt channel: one log line
each, charon and espd keep running and answering, nothing half-installed in espd."""

import os
import socket
import struct

import pytest

from liveespd import spi_set
from livelab import client_child, client_conn, gw_child, gw_conn
from livenet import GW_INNER, ping
from liveproc import wait_for

pytestmark = pytest.mark.strongswan


def squatter(addr):
    """A tunnel of another controller that routes addr/32 already."""
    key = os.urandom(36).hex()
    return {
        "name": "squatter",
        "mode": "tunnel",
        "remote_ts": [f"{addr}/32"],
        "inbound": [{"spi": "0x7700aa01", "alg": "aes256gcm16", "key": key}],
        "outbound": {"spi": "0x7700bb01", "alg": "aes256gcm16", "key": key},
    }


def both_alive(gw):
    assert gw.charon.alive() and gw.espd.alive()
    gw.charon.swanctl("--stats", timeout=10)
    gw.espd.stats()


def test_bad_input(lab, record_property):
    gw = lab.gateway(
        {
            "rw": gw_conn(
                {
                    "net": gw_child(),
                    "bad": gw_child(esp="aes192-sha256", local_ts="198.51.100.0/25"),
                },
                lab.ike500,
            )
        },
        pin_espd=False,  # else charon drops our garbage as from another sender, undecoded
    )
    cl = lab.client(None)
    cl.load(
        {
            "connections": {
                "gw": client_conn(
                    {
                        "net": client_child(f"{cl.addr}/32"),
                        "bad": {
                            "local_ts": f"{cl.addr}/32",
                            "remote_ts": "198.51.100.0/25",
                            "esp_proposals": "aes192-sha256",
                        },
                    },
                    lab.ike500,
                    "c1.example",
                )
            }
        }
    )
    ns = lab.topo.clients[0]
    lines = {}

    # 1. espd refuses the tunnel: its remote_ts is another tunnel's route
    assert gw.espd.request({"op": "add_tunnel", "tunnel": squatter(cl.addr)})["ok"]
    mark = gw.charon.mark()
    assert cl.initiate("net", timeout=10, check=False).returncode != 0
    m = gw.charon.wait_for_log(
        r"kernel-espd: adding tunnel charon-\S+: espd refused: .*no other tunnel routes.*", 5, since=mark
    )
    lines["refused"] = m[0]
    assert [t["name"] for t in gw.espd.tunnels()] == ["squatter"]  # nothing half-installed
    both_alive(gw)
    assert gw.espd.request({"op": "delete_tunnel", "name": "squatter"})["ok"]

    # the same CHILD_SA once the route is free (on the IKE_SA that stayed up)
    cl.initiate("net")
    assert ping(ns, GW_INNER, src=cl.addr, count=2, interval=0.2)[0] == 2
    (before,) = gw.espd.tunnels()

    # 2. a proposal espd cannot do: AES-192-CBC
    mark = gw.charon.mark()
    cl.initiate("bad", timeout=10, check=False)
    m = gw.charon.wait_for_log(
        r"kernel-espd: cannot install inbound SA [0-9a-f]{8} \(reqid \d+\): AES_CBC with a 24-byte key.*",
        5,
        since=mark,
    )
    lines["aes192"] = m[0]
    (after,) = gw.espd.tunnels()
    assert spi_set(after) == spi_set(before), (before, after)
    assert not [c for c in gw.charon.children("bad")]
    both_alive(gw)

    # 3. garbage on charon's punt socket, as if from espd
    mark = gw.charon.mark()
    punt = f"{gw.charon.dir}/ike.sock"
    garbage = [b"\x00" * 3, b"XX" + b"\x00" * 60, struct.pack("!2sBB", b"EP", 9, 4) + b"\x00" * 60]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        for g in garbage:
            s.sendto(g, punt)
    m = gw.charon.wait_for_log(r"socket-espd: malformed punt datagram \(.*\), dropped.*", 5, since=mark)
    lines["punt"] = m[0]
    # (charon's receiver thread logs them one after another: wait for all, bounded)
    wait_for(
        lambda: gw.charon.log(mark).count("malformed punt datagram") >= len(garbage),
        5,
        what="a log line for each malformed punt datagram",
    )
    n = gw.charon.log(mark).count("malformed punt datagram")
    assert n == len(garbage), n
    both_alive(gw)

    # IKE still works: the client rekeys its CHILD_SA, espd gets the new SAs
    old_in = spi_set(after)[0]
    cl.swanctl("--rekey", "--child", "net")

    def rekeyed():
        (t,) = gw.espd.tunnels()
        inbound, _ = spi_set(t)
        return inbound.isdisjoint(old_in) and len(inbound) == 1

    wait_for(rekeyed, 10, what="the rekeyed CHILD_SA in espd")
    assert ping(ns, GW_INNER, src=cl.addr, count=2, interval=0.2)[0] == 2
    both_alive(gw)
    for k, v in lines.items():
        print(f"\n{k}: {v}")
        record_property(k, v)
