"""The live tests' lab, usable without pytest: Session, Lab, Gateway and the config helpers.

conftest.py turns Session and Lab into the fixtures `session` and `lab`; scripts/demo.py uses them
directly (see README.md here).
"""

import os
import shutil
import tempfile

from livecharon import CLIENT_PLUGINS, GW_PLUGINS, Charon, have_plugin, plugins
from liveespd import Espd, supports_ike_listen
from livenet import GW_ADDR, Topology
from liveproc import Procs, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PSK = '"espd live test only"'
PROPOSALS = ["aes256-sha256-x25519", "aes256-sha256-modp2048"]


class Unavailable(Exception):
    """Why the live setup cannot run on this host (not root, a plugin missing, no espd binary)."""


def why_unavailable():
    """A reason the live setup cannot run here, or None."""
    if os.geteuid() != 0:
        return "the live tests need root (network namespaces)"
    for p in ("kernel-espd", "socket-espd", "kernel-libipsec"):
        if not have_plugin(p):
            return f"no {p} plugin: run integrations/strongswan/build.sh"
    return None


def espd_source():
    """The espd binary to copy: $ESPD (relative to the repository) or main's release build."""
    source = os.environ.get("ESPD", "/work/main/.build/release/espd")
    if not os.path.isabs(source):
        source = os.path.join(REPO, source)
    return source


class Session:
    """A temporary folder with a copy of espd, and whether that espd runs IKE on 500 too."""

    def __init__(self, tmp):
        self.tmp = tmp
        # another build may replace the binary while the suite runs: a copy of our own
        self.espd = os.path.join(tmp, "espd")
        shutil.copy2(espd_source(), self.espd)
        self.ike500, self.ike500_why = supports_ike_listen(self.espd, os.path.join(tmp, "probe"))
        if os.environ.get("LIVE_IKE_PORT") == "4500":  # the 4500-only setup, on any binary
            self.ike500, self.ike500_why = False, "LIVE_IKE_PORT=4500"

    @classmethod
    def open(cls, prefix="espd-live."):
        """A new session in a new /tmp folder; raises Unavailable with the reason it cannot run."""
        why = why_unavailable()
        if why is None and not os.path.exists(espd_source()):
            why = f"no espd binary at {espd_source()} (set ESPD)"
        if why:
            raise Unavailable(why)
        tmp = tempfile.mkdtemp(prefix=prefix)
        os.chmod(tmp, 0o755)
        try:
            return cls(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def describe(self):
        why = "" if self.ike500 else self.ike500_why.replace("\n", "; ")
        return f"espd copy: {self.espd}; ike.listen (port 500): {self.ike500} {why}".rstrip()

    def close(self, keep=False):
        """Removes the folder, unless keep or KEEP is set in the environment."""
        if not (keep or os.environ.get("KEEP")):
            shutil.rmtree(self.tmp, ignore_errors=True)


class Gateway:
    def __init__(self, charon, espd):
        self.charon = charon
        self.espd = espd


class Lab:
    """One test's topology and processes; everything is stopped and deleted at its end."""

    _count = 0

    def __init__(self, session, name):
        Lab._count += 1
        self.session = session
        self.dir = os.path.join(session.tmp, name)
        os.makedirs(self.dir)
        self.procs = Procs()
        self.topo = None
        prefix = f"lv{os.getpid() % 10000}{Lab._count}"[:8]
        self.topo = Topology(prefix, self.procs, self.dir)
        self.gw = None
        self.clients = []

    @property
    def ike500(self):
        return self.session.ike500

    def gateway(
        self,
        connections,
        secrets=None,
        pools=None,
        charon=None,
        espd=None,
        extra_plugins=(),
        load=True,
        pin_espd=True,
    ):
        """charon + kernel-espd + socket-espd and espd in the gateway namespace, config loaded."""
        d = os.path.join(self.dir, "gw")
        os.makedirs(d)
        ike = {"punt": f"unix:{d}/ike.sock"}
        sock_conf = {"punt": f"unix:{d}/ike.sock"}
        if self.ike500:
            ike["punt_local"] = f"unix:{d}/ike-espd.sock"
            ike["listen"] = [f"{GW_ADDR}:500"]
            if pin_espd:
                # socket-espd { espd = ... }: replies go to espd's fixed end of the punt channel
                sock_conf["espd"] = f"unix:{d}/ike-espd.sock"
        config = {
            "listen": [f"{GW_ADDR}:4500"],
            "tun": {"name": "espd0", "mtu": 1400, "addresses": ["198.51.100.1/24"]},
            "ike": ike,
            "control": f"{d}/control.sock",
            "tunnels": [],
        }
        config.update(espd or {})
        settings = {"port": 500 if self.ike500 else 4500, "port_nat_t": 4500}
        settings.update(charon or {})
        c = Charon(
            "gateway",
            self.topo.gw,
            d,
            self.procs,
            plugins(*GW_PLUGINS, *extra_plugins),
            settings,
            {
                "kernel-espd": {"control": config["control"], "timeout": 3000},
                "socket-espd": sock_conf,
            },
        )
        c.start()
        wait_for(lambda: os.path.exists(f"{d}/ike.sock"), 10, what="charon's punt socket")
        e = Espd(self.topo.gw, os.path.join(d, "espd"), self.session.espd, self.procs, config)
        e.start()
        c.wait_for_log(r"kernel-espd: subscribed to espd's events", 10)
        conf = {"connections": connections, "secrets": secrets or {"ike-all": {"secret": PSK}}}
        if pools:
            conf["pools"] = pools
        c.write_swanctl(conf)
        if load:
            c.load()
        self.gw = Gateway(c, e)
        return self.gw

    def client(self, connections, secrets=None, charon=None, extra_plugins=()):
        """A client namespace behind the NAT with charon + kernel-libipsec + socket-default."""
        ns = self.topo.add_client()
        i = len(self.topo.clients)
        d = os.path.join(self.dir, f"c{i}")
        os.makedirs(d)
        settings = {"port": 0, "port_nat_t": 4500, "install_virtual_ip": "yes"}
        settings.update(charon or {})
        c = Charon(f"client{i}", ns, d, self.procs, plugins(*CLIENT_PLUGINS, *extra_plugins), settings)
        c.addr = ns.addr
        c.start()
        if connections is not None:
            c.load({"connections": connections, "secrets": secrets or {"ike-all": {"secret": PSK}}})
        self.clients.append(c)
        return c

    def close(self):
        self.procs.stop_all()
        if self.topo is not None:
            self.topo.destroy()


# ---- configurations --------------------------------------------------------------------------


def gw_conn(children, ike500, auth="psk", local_id="gw.example", remote=None, **extra):
    conn = {
        "version": 2,
        "local_addrs": GW_ADDR,
        "proposals": PROPOSALS,
        "local": {"auth": auth, "id": local_id},
        "remote": remote or {"auth": "psk"},
        "children": children,
    }
    if not ike500:
        conn["local_port"] = 4500
    conn.update(extra)
    return conn


def gw_child(remote_ts="203.0.113.0/26", esp="aes128gcm16, aes256-sha256", **extra):
    return {"local_ts": "198.51.100.0/24", "remote_ts": remote_ts, "esp_proposals": esp, **extra}


def client_conn(children, ike500, local_id, auth="psk", remote=None, **extra):
    conn = {
        "version": 2,
        "remote_addrs": GW_ADDR,
        "proposals": PROPOSALS,
        "local": {"auth": auth, "id": local_id},
        "remote": remote or {"auth": "psk", "id": "gw.example"},
        "children": children,
    }
    if not ike500:
        conn["remote_port"] = 4500
    conn.update(extra)
    return conn


def client_child(local_ts, esp="aes128gcm16", **extra):
    return {"local_ts": local_ts, "remote_ts": "198.51.100.0/24", "esp_proposals": esp, **extra}
