"""Hosts that livelab's Lab does not make itself; each function takes the lab.

espd_client: a client namespace behind the NAT whose charon has kernel-espd + socket-espd and espd
as its dataplane, as the gateway has (lab.client gives charon + kernel-libipsec). With an espd that
has ike.listen (lab.ike500), IKE goes from port 500 through espd and floats to 4500, and charon is
told espd's end of the punt channel so that it can initiate.
"""

import os

from livecharon import GW_PLUGINS, PSK, Charon, plugins
from liveespd import Espd
from liveproc import wait_for


class EspdHost:
    """charon and espd in one namespace (ns.addr is the host's address)."""

    def __init__(self, ns, charon, espd):
        self.ns = ns
        self.addr = ns.addr
        self.charon = charon
        self.espd = espd


def espd_client(lab, connections, tun, secrets=None, espd=None, charon=None, extra_plugins=()):
    """A new client namespace with charon (kernel-espd, socket-espd) and espd, TUN address tun
    (e.g. "198.51.100.50/32"); espd= and charon= add to or replace keys of espd's configuration
    and charon's settings; connections (None: none) loaded with secrets (default: the test PSK)."""
    ns = lab.topo.add_client()
    name = f"c{len(lab.topo.clients)}"
    d = os.path.join(lab.dir, name)
    os.makedirs(d)
    punt = f"unix:{d}/ike.sock"
    config = {
        "listen": [f"{ns.addr}:4500"],
        "tun": {"name": "espd0", "mtu": 1400, "addresses": [tun]},
        "ike": {"punt": punt},
        "control": f"{d}/control.sock",
        "tunnels": [],
    }
    socket_espd = {"punt": punt}
    if lab.ike500:
        config["ike"].update(listen=[f"{ns.addr}:500"], punt_local=f"unix:{d}/ike-espd.sock")
        socket_espd["espd"] = config["ike"]["punt_local"]
    config.update(espd or {})
    plugin_conf = {"kernel-espd": {"control": config["control"], "timeout": 3000}, "socket-espd": socket_espd}
    settings = {"port": 500 if lab.ike500 else 4500, "port_nat_t": 4500, **(charon or {})}
    load = plugins(*GW_PLUGINS, *extra_plugins)
    c = Charon(f"client-{name}", ns, d, lab.procs, load, settings, plugin_conf)
    c.addr = ns.addr
    c.start()
    # charon binds the punt socket; espd connects to it when it starts
    wait_for(lambda: os.path.exists(f"{d}/ike.sock"), 10, what=f"{name}'s punt socket")
    e = Espd(ns, os.path.join(d, "espd"), lab.session.espd, lab.procs, config).start()
    c.wait_for_log(r"kernel-espd: subscribed to espd's events", 10)
    if connections is not None:
        c.load({"connections": connections, "secrets": secrets or {"ike-all": {"secret": PSK}}})
    lab.clients.append(c)
    return EspdHost(ns, c, e)
