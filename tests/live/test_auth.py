"""Issue 15, 3: a CA made with pki; one client by certificate, one by EAP-MSCHAPv2."""

import os

import pytest

from livecharon import have_plugin
from livelab import client_child, client_conn, gw_child, gw_conn
from livenet import GW_INNER, ping
from livepki import CA

pytestmark = pytest.mark.strongswan

EAP_SECRET = '"mschapv2 live test only"'


def test_cert_and_eap_mschapv2_clients(lab, record_property):
    for p in ("eap-mschapv2", "eap-identity"):
        if not have_plugin(p):
            pytest.skip(f"no {p} plugin (libcharon-extra-plugins)")
    ca = CA(os.path.join(lab.dir, "ca"))
    ca.issue("gw.example", server=True)
    ca.issue("c1.example")
    local = {"auth": "pubkey", "id": "gw.example", "certs": "gw.example.crt"}
    conns = {
        "rw-cert": gw_conn(
            {"net": gw_child()},
            lab.ike500,
            auth="pubkey",
            remote={"auth": "pubkey", "id": "c1.example"},
            local=local,
        ),
        "rw-eap": gw_conn(
            {"net": gw_child()},
            lab.ike500,
            auth="pubkey",
            remote={"auth": "eap-mschapv2", "eap_id": "%any"},
            local=local,
        ),
    }
    # MD4 for MSCHAPv2 comes from openssl's legacy provider (no md4 plugin needed)
    gw = lab.gateway(
        conns,
        secrets={"eap-carol": {"id": "carol", "secret": EAP_SECRET}},
        extra_plugins=("eap-identity", "eap-mschapv2"),
        load=False,
    )
    ca.install(gw.charon, "gw.example")
    gw.charon.load()

    c1 = lab.client(None)
    ca.install(c1, "c1.example")
    c1.load(
        {
            "connections": {
                "gw": client_conn(
                    {"net": client_child(f"{c1.addr}/32")},
                    lab.ike500,
                    "c1.example",
                    local={"auth": "pubkey", "id": "c1.example", "certs": "c1.example.crt"},
                    remote={"auth": "pubkey", "id": "gw.example"},
                )
            }
        }
    )
    c2 = lab.client(None, extra_plugins=("eap-identity", "eap-mschapv2"))
    ca.install(c2)
    c2.load(
        {
            "connections": {
                "gw": client_conn(
                    {"net": client_child(f"{c2.addr}/32")},
                    lab.ike500,
                    "carol",
                    local={"auth": "eap-mschapv2", "id": "carol", "eap_id": "carol"},
                    remote={"auth": "pubkey", "id": "gw.example"},
                )
            },
            "secrets": {"eap-carol": {"id": "carol", "secret": EAP_SECRET}},
        }
    )
    c1.initiate("net")
    c2.initiate("net")
    gw.charon.wait_for_log(r"authentication of 'c1.example' with ECDSA.* successful", 5)
    gw.charon.wait_for_log(r"EAP method EAP_MSCHAPV2 succeeded", 5)
    sas = {ike["name"]: ike for ike in gw.charon.list_sas()}
    assert set(sas) == {"rw-cert", "rw-eap"}, sas
    assert sas["rw-eap"]["remote"]["id"] == "carol", sas["rw-eap"]
    for cl, ns in zip((c1, c2), lab.topo.clients, strict=True):
        received, sent = ping(ns, GW_INNER, src=cl.addr, count=3, interval=0.2)
        assert received == sent, (cl.name, received, sent)
    tunnels = gw.espd.tunnels()
    assert sorted(t["remote_ts"][0] for t in tunnels) == [f"{c1.addr}/32", f"{c2.addr}/32"]
    print(f"\ncert + EAP: IKE_SAs {sorted(sas)}, espd tunnels {len(tunnels)}")
    record_property("ike_sas", sorted(sas))
