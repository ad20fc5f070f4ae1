"""espd in the gateway namespace: config from a dict, started, its control socket (JSON lines)."""

import json
import os
import socket

from liveproc import Daemon, Procs, run, wait_for


class Espd(Daemon):
    def __init__(self, ns, workdir, binary, procs: Procs, config):
        self.ns = ns
        self.dir = workdir
        self.binary = binary
        self.procs = procs
        self.config = config
        self.control = config["control"]
        self.config_path = os.path.join(workdir, "espd.json")
        self.log_path = os.path.join(workdir, "espd.out")
        self.proc = None
        os.makedirs(workdir, exist_ok=True)

    def start(self, timeout=10):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=1)
        if os.path.exists(self.control):
            os.unlink(self.control)
        argv = self.ns.argv(
            ["nice", "-n", "10", self.binary, "run", "--config", self.config_path] + ["--io", "mmsg"]
        )
        self.proc = self.procs.start(argv, self.log_path)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"espd exited {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                return self.request({"op": "stats", "tunnels": False}, timeout=1)["ok"]
            except OSError:
                return False

        wait_for(up, timeout, what="espd's control socket")
        return self

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def request(self, obj, timeout=5):
        """One request on a fresh connection; the answer as a dict."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.control)
            s.sendall(json.dumps(obj).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
        return json.loads(buf)

    def tunnels(self):
        answer = self.request({"op": "list"})
        assert answer.get("ok"), answer
        return answer["tunnels"]

    def stats(self):
        answer = self.request({"op": "stats", "tunnels": False})
        assert answer.get("ok"), answer
        return answer["stats"]

    def cli_list(self):
        """`espd tunnel list --json`, the CLI's view (as the smoke test reads it)."""
        p = run(
            self.ns.argv([self.binary, "tunnel", "list", "--json", "--control", self.control]),
            timeout=10,
        )
        return json.loads(p.stdout)["tunnels"]


def spi_set(tunnel):
    """(inbound SPIs, outbound SPI) of one tunnel of `list`, as ints."""
    return {int(sa["spi"], 16) for sa in tunnel["inbound"]}, int(tunnel["outbound"]["spi"], 16)


def supports_ike_listen(binary, workdir):
    """Whether this espd accepts ike.listen and ike.punt_local (checked with `espd check`)."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "probe.json")
    with open(path, "w") as f:
        json.dump(
            {
                "listen": ["192.0.2.1:4500"],
                "tun": {"name": "espd0", "mtu": 1400, "addresses": ["198.51.100.1/24"]},
                "ike": {
                    "punt": f"unix:{workdir}/p.sock",
                    "punt_local": f"unix:{workdir}/q.sock",
                    "listen": ["192.0.2.1:500"],
                },
                "control": f"{workdir}/c.sock",
                "tunnels": [],
            },
            f,
        )
    p = run([binary, "check", "--config", path], check=False, timeout=20)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def counter(stats, name):
    """A counter of `stats` wherever it sits (top level or under a group such as drops)."""
    found = []

    def walk(obj):
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k == name and isinstance(v, int):
                    found.append(v)
                else:
                    walk(v)

    walk(stats)
    assert found, f"no counter {name} in espd's stats: {sorted(stats)}"
    return sum(found)
