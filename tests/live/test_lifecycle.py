"""Issue 15, 5 and 7: DPD of a killed client; teardown, charon stopped, espd restarted."""

import re
import signal
import time

import pytest

from liveespd import spi_set
from livelab import client_child, client_conn, gw_child, gw_conn
from livenet import GW_INNER, ping, ping_until
from liveproc import wait_for

pytestmark = pytest.mark.strongswan

DPD_TIMEOUT = 20


def _connect(lab, gw_extra=None, cl_extra=None):
    gw = lab.gateway({"rw": gw_conn({"net": gw_child()}, lab.ike500, **(gw_extra or {}))})
    cl = lab.client(None)
    cl.load(
        {
            "connections": {
                "gw": client_conn(
                    {"net": client_child(f"{cl.addr}/32")},
                    lab.ike500,
                    "c1.example",
                    **(cl_extra or {}),
                )
            }
        }
    )
    cl.initiate("net")
    ns = lab.topo.clients[0]
    received, sent = ping(ns, GW_INNER, src=cl.addr, count=2, interval=0.2)
    assert received == sent
    assert len(gw.espd.tunnels()) == 1
    return gw, cl, ns


def test_dpd_removes_a_killed_client(lab, record_property):
    gw, cl, ns = _connect(lab, gw_extra={"dpd_delay": "2s"})
    mark = gw.charon.mark()
    t0 = time.monotonic()
    cl.stop(signal.SIGKILL)  # no goodbye
    wait_for(lambda: not gw.espd.tunnels(), DPD_TIMEOUT, interval=0.25, what="DPD to remove the tunnel")
    took = time.monotonic() - t0
    gw.charon.wait_for_log(r"giving up after \d+ retransmits", 2, since=mark)
    gw.charon.wait_for_log(r"kernel-espd: tunnel charon-\S+ \(reqid \d+\) deleted from espd", 2, since=mark)
    assert gw.charon.list_sas() == []
    assert gw.charon.alive() and gw.espd.alive()
    print(f"\nDPD: espd's tunnel gone {took:.1f} s after the client was killed")
    record_property("dpd_seconds", round(took, 1))


def test_teardown_and_restarts(lab, record_property):
    gw, cl, ns = _connect(lab, cl_extra={"dpd_delay": "2s"})

    # swanctl --terminate removes the tunnel from espd
    mark = gw.charon.mark()
    gw.charon.swanctl("--terminate", "--ike", "rw", "--timeout", "10")
    wait_for(lambda: not gw.espd.tunnels(), 5, what="the terminated tunnel to leave espd")
    gw.charon.wait_for_log(r"kernel-espd: tunnel charon-\S+ \(reqid \d+\) deleted from espd", 2, since=mark)

    # espd restarted under charon: traffic back within 10 s, on new SAs
    cl.initiate("net")
    (before,) = gw.espd.tunnels()
    gw.espd.stop()
    gw.espd.start()
    t0 = time.monotonic()
    ping_until(ns, GW_INNER, src=cl.addr, timeout=10)
    back = time.monotonic() - t0
    (child,) = gw.charon.children("net")
    (after,) = gw.espd.tunnels()
    assert spi_set(after) == ({child["spi_in"]}, child["spi_out"])
    assert spi_set(after)[0].isdisjoint(spi_set(before)[0]), "espd's new tunnel reuses SAs"

    # charon stopped with SIGTERM: it leaves no tunnel in espd
    gw.charon.stop(signal.SIGTERM)
    assert not gw.charon.alive()
    tunnels = gw.espd.tunnels()
    assert tunnels == [], tunnels
    assert gw.espd.alive()
    print(f"\nteardown: traffic back {back:.1f} s after espd's restart; no tunnel after charon's SIGTERM")
    record_property("espd_restart_traffic_back_seconds", round(back, 1))


def test_no_dpd_while_esp_arrives(lab, record_property):
    """charon's DPD asks for the CHILD_SA's last use (query_sa: espd's idle_ms): while the
    client's ESP arrives the gateway sends no DPD; once it stops, DPD starts again."""
    gw, cl, ns = _connect(lab, gw_extra={"dpd_delay": "2s"})
    mark = gw.charon.mark()
    received, sent = ping(ns, GW_INNER, src=cl.addr, count=35, interval=0.2, deadline=15)
    assert received == sent, (received, sent)
    busy = len(re.findall(r"sending DPD request", gw.charon.log(mark)))
    mark = gw.charon.mark()
    time.sleep(5)
    idle = len(re.findall(r"sending DPD request", gw.charon.log(mark)))
    print(f"\nDPD requests from the gateway: {busy} in 7 s of ESP from the client, {idle} in 5 s without")
    record_property("dpd_busy_idle", [busy, idle])
    assert busy == 0 and idle >= 1, (busy, idle)
