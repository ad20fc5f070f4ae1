"""A charon instance: strongswan.conf and swanctl.conf from Python, its own vici socket and /run."""

import glob
import os
import re
import time

from liveproc import Daemon, Procs, run, wait_for

CRYPTO = "random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints hmac sha1 sha2 aes gcm kdf"
PSK = '"espd live test only"'
PLUGIN_DIR = "/usr/lib/ipsec/plugins"


def have_plugin(name):
    return os.path.exists(f"{PLUGIN_DIR}/libstrongswan-{name}.so")


def plugins(*extra):
    names = [p for p in ("curve25519", "gmp") if have_plugin(p)]
    return " ".join(names + CRYPTO.split() + list(extra))


GW_PLUGINS = ("vici", "kernel-espd", "socket-espd", "kernel-netlink", "updown")
CLIENT_PLUGINS = ("vici", "kernel-libipsec", "kernel-netlink", "socket-default", "updown")


def render(d, indent=0):
    """strongSwan's settings syntax from nested dicts (lists joined with commas)."""
    pad = "  " * indent
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out.append(f"{pad}{k} {{\n{render(v, indent + 1)}{pad}}}\n")
        elif isinstance(v, (list, tuple)):
            out.append(f"{pad}{k} = {', '.join(str(x) for x in v)}\n")
        else:
            out.append(f"{pad}{k} = {v}\n")
    return "".join(out)


class Charon(Daemon):
    def __init__(self, name, ns, workdir, procs: Procs, load, charon=None, plugin_conf=None):
        self.name = name
        self.ns = ns
        self.dir = workdir
        self.procs = procs
        self.vici = f"unix://{workdir}/charon.vici"
        self.log_path = os.path.join(workdir, "charon.log")
        self.conf_path = os.path.join(workdir, "strongswan.conf")
        self.swanctl_dir = os.path.join(workdir, "swanctl")
        self.swanctl_conf = os.path.join(self.swanctl_dir, "swanctl.conf")
        self.proc = None
        for sub in ("x509", "x509ca", "private", "rsa", "ecdsa", "pkcs8"):
            os.makedirs(os.path.join(self.swanctl_dir, sub), exist_ok=True)
        settings = {
            "load_modular": "no",
            "load": load,
            "install_virtual_ip": "no",
            "retransmit_tries": 3,
            "retransmit_timeout": 1,
            "retransmit_base": 1.4,
            "filelog": {
                "log": {
                    "path": self.log_path,
                    "time_format": "%T",
                    "default": 1,
                    "knl": 2,
                    "net": 2,
                    "flush_line": "yes",
                }
            },
            "syslog": {"daemon": {"default": -1}},
            "plugins": {"vici": {"socket": self.vici}, **(plugin_conf or {})},
        }
        settings.update(charon or {})
        with open(self.conf_path, "w") as f:
            f.write(render({"charon": settings}))

    def env(self):
        return {
            **os.environ,
            "STRONGSWAN_CONF": self.conf_path,
            "SWANCTL_DIR": self.swanctl_dir,
        }

    def start(self, timeout=10):
        if os.path.exists(self.log_path) and os.path.getsize(self.log_path):
            os.rename(self.log_path, f"{self.log_path}.{time.time_ns()}")
        open(self.log_path, "w").close()
        vici_path = self.vici[len("unix://") :]
        if os.path.exists(vici_path):
            os.unlink(vici_path)
        # plugins built but not installed ($ESPD_SWAN_PLUGIN_DIR, e.g. integrations/strongswan/
        # .build/out/...) are bind-mounted over the installed ones in charon's mount namespace only
        binds = ""
        alt = os.environ.get("ESPD_SWAN_PLUGIN_DIR")
        for so in sorted(glob.glob(os.path.join(alt, "libstrongswan-*-espd.so"))) if alt else ():
            binds += f" && mount --bind {so} {PLUGIN_DIR}/{os.path.basename(so)}"
        argv = self.ns.argv(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c"]
            + [f"mount -t tmpfs tmpfs /run{binds} && exec nice -n 10 /usr/lib/ipsec/charon"]
        )
        self.proc = self.procs.start(argv, os.path.join(self.dir, "charon.out"), env=self.env())
        wait_for(lambda: os.path.exists(vici_path), timeout, what=f"{self.name}'s vici socket")
        return self

    def write_swanctl(self, conf):
        with open(self.swanctl_conf, "w") as f:
            f.write(render(conf))

    def swanctl(self, command, *args, timeout=30, check=True):
        argv = ["swanctl", command, "--uri", self.vici, *args]
        return run(argv, timeout=timeout, check=check, env=self.env())

    def load(self, conf=None):
        """swanctl --load-all; conf (without "secrets": the test PSK) replaces swanctl.conf."""
        if conf is not None:
            conf = {"secrets": {"ike-all": {"secret": PSK}}, **conf}
            self.write_swanctl(conf)
        return self.swanctl("--load-all", "--file", self.swanctl_conf)

    def initiate(self, child, timeout=20, check=True):
        return self.swanctl(
            "--initiate",
            "--child",
            child,
            "--timeout",
            str(timeout),
            timeout=timeout + 10,
            check=check,
        )

    def list_sas(self):
        return parse_list_sas(self.swanctl("--list-sas", timeout=10).stdout)

    def children(self, name=None):
        """Every installed CHILD_SA (of the given name) of every IKE_SA."""
        return [
            c
            for ike in self.list_sas()
            for c in ike["children"]
            if (name is None or c["name"] == name) and c["state"] == "INSTALLED"
        ]

    def log(self, since=0):
        with open(self.log_path, errors="replace") as f:
            return f.read()[since:]

    def mark(self):
        return len(self.log())

    def wait_for_log(self, regex, timeout=10, since=0):
        """The first match of regex in the log (after offset since) within timeout seconds."""
        pattern = re.compile(regex)

        def find():
            return pattern.search(self.log(since))

        try:
            return wait_for(find, timeout, what=f"/{regex}/ in {self.log_path}")
        except TimeoutError as e:
            raise AssertionError(f"{e}; last lines:\n{self.log()[-1500:]}") from None


IKE_RE = re.compile(r"^(\S+): #(\d+), (\w+), IKEv[12], ([0-9a-f]{16})_i\*? ([0-9a-f]{16})_r")
HOST_RE = re.compile(r"^  (local|remote)\s+'([^']*)' @ ([0-9.]+)\[(\d+)\](?: \[([0-9.]+)\])?")
CHILD_RE = re.compile(r"^  (\S+): #(\d+), reqid (\d+), (\S+), (\S+), (\S+)")
SPI_RE = re.compile(r"^    (in|out)\s+([0-9a-f]{8})")
TS_RE = re.compile(r"^    (local|remote)\s+([0-9./]+)")


def parse_list_sas(text):
    """swanctl --list-sas as [{name, uid, state, spi_i, spi_r, local, remote, children: [...]}]."""
    sas = []
    child = None
    for line in text.splitlines():
        if m := IKE_RE.match(line):
            ike = dict(name=m[1], uid=int(m[2]), state=m[3], spi_i=m[4], spi_r=m[5], children=[])
            sas.append(ike)
            child = None
        elif sas and (m := HOST_RE.match(line)):
            sas[-1][m[1]] = {"id": m[2], "addr": m[3], "port": int(m[4]), "vip": m[5]}
        elif sas and (m := CHILD_RE.match(line)):
            child = dict(
                name=m[1],
                uid=int(m[2]),
                reqid=int(m[3]),
                state=m[4].rstrip(","),
                mode=m[5].rstrip(","),
                local_ts=[],
                remote_ts=[],
            )
            sas[-1]["children"].append(child)
        elif child is not None and (m := SPI_RE.match(line)):
            child["spi_" + m[1]] = int(m[2], 16)
        elif child is not None and (m := TS_RE.match(line)):
            child[m[1] + "_ts"].append(m[2])
    return sas
