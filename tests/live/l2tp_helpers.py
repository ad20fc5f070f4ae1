# SPDX-License-Identifier: Apache-2.0
"""Small helpers for the live L2TP/IPsec test: network namespaces, charon + espd per host, and the
UDP echo service and flows. Kept apart from any shared conftest so they can move onto shared
fixtures later: nothing here is a pytest fixture.

Every process is started here and stopped by its PID; namespaces carry the test's PID in their
names and are deleted by `Lab.close()`. Documentation addresses only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGINDIR = Path("/usr/lib/ipsec/plugins")
CHARON = Path("/usr/lib/ipsec/charon")
NICE = ["nice", "-n", "10"]

# charon's plugins besides the two of espd: what IKEv1 with a PSK and modp2048 needs, vici for
# swanctl, kernel-netlink for addresses and routes.
CRYPTO_PLUGINS = "random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints hmac sha1 sha2 aes gmp kdf"
CHARON_PLUGINS = CRYPTO_PLUGINS + " vici kernel-espd socket-espd kernel-netlink updown"


def espd_binary() -> Path:
    """$ESPD, else the repository's release build."""
    return Path(os.environ.get("ESPD") or REPO / ".build/release/espd")


def missing_prerequisites() -> str | None:
    """Why the live test cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "nft", "swanctl", "unshare"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    if not CHARON.exists():
        return f"{CHARON} missing"
    for so in ("kernel-espd", "socket-espd"):
        if not (PLUGINDIR / f"libstrongswan-{so}.so").exists():
            return f"{PLUGINDIR}/libstrongswan-{so}.so missing (integrations/strongswan/build.sh)"
    if not os.access(espd_binary(), os.X_OK):
        return f"no espd binary at {espd_binary()} (set ESPD)"
    return None


class Lab:
    """Namespaces, files and processes of one test; `close()` undoes everything."""

    def __init__(self, prefix: str = "l2tp"):
        self.tag = f"{prefix}{os.getpid() % 100000}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"espd-{prefix}-"))
        self.dir.chmod(0o755)
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.names: dict[int, str] = {}
        self.passed = False  # set by a test that reached its end: close() then removes self.dir
        self.espd = self.dir / "espd"
        shutil.copy2(espd_binary(), self.espd)

    # ---------------------------------------------------------------- namespaces

    def ns(self, short: str) -> str:
        return f"{self.tag}-{short}"

    def add_ns(self, *shorts: str) -> None:
        for s in shorts:
            sh("ip", "netns", "add", self.ns(s))
            self.namespaces.append(self.ns(s))
            self.ip(s, "link", "set", "lo", "up")

    def ip(self, short: str, *args: str) -> None:
        sh("ip", "-n", self.ns(short), *args)

    def veth(self, a: str, a_if: str, b: str, b_if: str) -> None:
        tmp = f"v{os.getpid() % 100000}{len(self.namespaces)}{a_if}"[:15]
        sh("ip", "link", "add", tmp, "type", "veth", "peer", "name", tmp + "p")
        sh("ip", "link", "set", tmp, "netns", self.ns(a), "name", a_if)
        sh("ip", "link", "set", tmp + "p", "netns", self.ns(b), "name", b_if)
        self.ip(a, "link", "set", a_if, "up")
        self.ip(b, "link", "set", b_if, "up")

    def run(self, short: str, *cmd: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns(short), *cmd], capture_output=True, text=True,
                              check=check, timeout=timeout)

    # ---------------------------------------------------------------- processes

    def spawn(self, name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        out = open(self.dir / f"{name}.out", "ab")
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env={**os.environ, **(env or {})})
        out.close()
        self.procs.append(p)
        self.names[p.pid] = name
        return p

    def spawn_in(self, short: str, name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        return self.spawn(name, ["ip", "netns", "exec", self.ns(short), *cmd], env)

    def stop(self, p: subprocess.Popen, grace: float = 5) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def close(self, keep: bool = False) -> None:
        # everything else before espd: a charon that stops deletes its tunnels from espd
        for p in sorted(reversed(self.procs), key=lambda p: self.names.get(p.pid, "").startswith("espd-")):
            try:
                self.stop(p)
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass
        for n in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
        if keep:
            print(f"l2tp_helpers: kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------------- espd and charon

    def host_dir(self, short: str) -> Path:
        d = self.dir / short
        d.mkdir(exist_ok=True)
        return d

    def espd_config(self, short: str, listen: str, ike_listen: str | None, tun: str, pool: str,
                    punt_local: bool = True) -> Path:
        d = self.host_dir(short)
        ike = {"punt": f"unix:{d}/ike.sock"}
        if punt_local:
            ike["punt_local"] = f"unix:{d}/ike-espd.sock"
        if ike_listen:
            ike["listen"] = [ike_listen]
        cfg = {
            "listen": [listen],
            "tun": {"name": "espd0", "mtu": 1400, "addresses": [tun]},
            "ike": ike,
            "control": f"{d}/control.sock",
            "transport_alias_pool": pool,
            "tunnels": [],
        }
        path = d / "espd.json"
        path.write_text(json.dumps(cfg, indent=2) + "\n")
        return path

    def espd_check(self, config: Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.espd), "check", "--config", str(config)], capture_output=True, text=True,
                              timeout=20)

    def start_espd(self, short: str) -> subprocess.Popen:
        d = self.host_dir(short)
        return self.spawn_in(short, f"espd-{short}",
                             [*NICE, str(self.espd), "run", "--config", str(d / "espd.json"), "--io", "mmsg"])

    def espd_ctl(self, short: str, *args: str) -> dict:
        d = self.host_dir(short)
        r = self.run(short, str(self.espd), *args, "--json", "--control", str(d / "control.sock"))
        return json.loads(r.stdout)

    def charon_config(self, short: str, swanctl_conf: str, port: int = 500, espd_local: bool = True) -> None:
        d = self.host_dir(short)
        espd_line = f"espd = unix:{d}/ike-espd.sock" if espd_local else ""
        (d / "strongswan.conf").write_text(f"""charon {{
  load_modular = no
  load = {CHARON_PLUGINS}
  port = {port}
  port_nat_t = 4500
  install_virtual_ip = no
  retransmit_tries = 3
  retransmit_timeout = 2
  filelog {{
    log {{
      path = {d}/charon.log
      time_format = %T
      default = 1
      ike = 2
      knl = 2
      net = 1
      flush_line = yes
    }}
  }}
  syslog {{
    daemon {{
      default = -1
    }}
  }}
  plugins {{
    vici {{
      socket = unix://{d}/charon.vici
    }}
    kernel-espd {{
      control = {d}/control.sock
      timeout = 3000
    }}
    socket-espd {{
      punt = unix:{d}/ike.sock
      {espd_line}
    }}
  }}
}}
""")
        (d / "swanctl.conf").write_text(swanctl_conf)

    def start_charon(self, short: str) -> subprocess.Popen:
        """charon in the namespace, with a /run of its own (pid file, ...). Plugins built but not
        installed ($ESPD_SWAN_PLUGIN_DIR, e.g. integrations/strongswan/.build/out/...) are bind-mounted
        over the installed ones inside that private mount namespace only."""
        d = self.host_dir(short)
        binds = ""
        alt = os.environ.get("ESPD_SWAN_PLUGIN_DIR")
        if alt:
            for so in sorted(Path(alt).glob("libstrongswan-*-espd.so")):
                binds += f" && mount --bind {so} {PLUGINDIR / so.name}"
        script = f"mount -t tmpfs tmpfs /run{binds} && exec {' '.join(NICE)} {CHARON}"
        return self.spawn_in(short, f"charon-{short}",
                             ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                             env={"STRONGSWAN_CONF": str(d / "strongswan.conf")})

    def swanctl(self, short: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        d = self.host_dir(short)
        return subprocess.run(["swanctl", args[0], "--uri", f"unix://{d}/charon.vici", *args[1:]],
                              capture_output=True, text=True, timeout=timeout)

    def log(self, short: str, name: str = "charon.log") -> str:
        p = self.host_dir(short) / name
        return p.read_text(errors="replace") if p.exists() else ""

    def out(self, name: str) -> str:
        p = self.dir / f"{name}.out"
        return p.read_text(errors="replace") if p.exists() else ""


def sh(*cmd: str, input: str | None = None) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True, input=input, timeout=20)


def wait_for(pred, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


def child_spis(list_sas: str) -> list[tuple[str, str]]:
    """(spi_in, spi_out) of every CHILD_SA in `swanctl --list-sas` text output."""
    ins = re.findall(r"^\s+in\s+([0-9a-f]{8})[\s,(]", list_sas, re.M)
    outs = re.findall(r"^\s+out\s+([0-9a-f]{8})[\s,(]", list_sas, re.M)
    return list(zip(ins, outs))


# A UDP echo service: every datagram is answered with "echo:" + its payload, and logged as one
# JSON line {"from", "port", "text"} on stdout.
ECHO_SERVER = r"""
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
print(json.dumps({"event": "listening"}), flush=True)
while True:
    data, (addr, port) = s.recvfrom(65535)
    print(json.dumps({"from": addr, "port": port, "text": data.decode(errors="replace")}), flush=True)
    s.sendto(b"echo:" + data, (addr, port))
"""

# A client flow: COUNT datagrams "TAG:i" from BIND:SPORT to DST:DPORT, every INTERVAL; prints one
# JSON line {"sent", "replies": {source: [texts]}} after LINGER seconds of listening.
FLOW = r"""
import json, socket, sys, time
bind, sport, dst, dport, tag, count, interval, linger = sys.argv[1:9]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((bind, int(sport)))
s.setblocking(False)
replies = {}
def drain():
    while True:
        try:
            data, (a, p) = s.recvfrom(65535)
        except BlockingIOError:
            return
        replies.setdefault(f"{a}:{p}", []).append(data.decode(errors="replace"))
sent = 0
for i in range(int(count)):
    try:
        s.sendto(f"{tag}:{i}".encode(), (dst, int(dport)))
        sent += 1
    except OSError:
        pass
    time.sleep(float(interval))
    drain()
end = time.monotonic() + float(linger)
while time.monotonic() < end:
    time.sleep(0.05)
    drain()
print(json.dumps({"sent": sent, "replies": replies}), flush=True)
"""
