"""espd in the gateway namespace: config from a dict, started, its control socket (JSON lines)."""

import json
import os
import signal
import socket
import time

import nettool
from liveproc import Daemon, Procs, run, tail, wait_exit, wait_for


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
        return control_request(self.control, obj, timeout)

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


def control_request(path, obj, timeout=5):
    """One request on a fresh connection to espd's control socket; the answer as a dict."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(obj).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


class EspdRun(Daemon):
    """`espd run --config FILE [ARGS]` in a namespace, as the espd-only suites run it: stdout (the
    {"stats":...} lines) in NAME.out, stderr in NAME.err; signals: SIGUSR1 stats, SIGHUP reload,
    SIGTERM stop. Every helper raises AssertionError saying what went wrong (with espd's stderr)."""

    def __init__(self, ns, name, binary, config_path, procs: Procs, logdir, args=()):
        self.ns, self.name, self.binary = ns, name, binary
        self.config_path = config_path
        self.procs = procs
        self.args = [str(a) for a in args]
        self.out = os.path.join(logdir, f"{name}.out")
        self.err = os.path.join(logdir, f"{name}.err")
        self.proc = None

    def config(self):
        with open(self.config_path) as f:
            return json.load(f)

    def why(self, lines=2):
        return tail(self.err, lines)

    def launch(self):
        """Starts espd without waiting (NAME.out and NAME.err start empty, as a restart's should)."""
        for path in (self.out, self.err):
            open(path, "w").close()
        argv = self.ns.argv([self.binary, "run", "--config", self.config_path, *self.args])
        self.proc = self.procs.start(argv, self.out, err_path=self.err)
        return self

    def start(self, timeout=8):
        """Starts espd; returns once it is ready: still running, its TUN up with every
        tun.addresses entry, every listen port bound."""
        cfg = self.config()
        tun = cfg.get("tun", {}).get("name", "espd0")
        addrs = cfg.get("tun", {}).get("addresses", [])
        ports = [lst.rsplit(":", 1)[1] for lst in cfg.get("listen", [])]
        self.launch()
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(f"espd {self.name} exited at start (rc={rc}): {self.why()}")
            missing = self._not_ready(tun, addrs, ports)
            if not missing:
                return self
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"espd {self.name} not ready after {timeout}s: {'; '.join(missing)}; stderr: {self.why()}"
                )
            time.sleep(0.1)

    def _not_ready(self, tun, addrs, ports):
        ns = self.ns
        if not ns.link_exists(tun):
            return [f"no TUN {tun}"]
        if not ns.link_up(tun):
            return [f"TUN {tun} not UP"]
        missing = [f"no address {a} on {tun}" for a in addrs if not ns.has_addr(tun, a)]
        return missing + [f"UDP port {p} not bound" for p in ports if not ns.udp_bound(p)]

    @property
    def pid(self):
        return self.proc.pid

    def stats_lines(self):
        try:
            with open(self.out, errors="replace") as f:
                return [line for line in f if line.startswith('{"stats"')]
        except OSError:
            return []

    def last_stats(self):
        """The stats object of the last {"stats":...} line espd printed (AssertionError if none)."""
        lines = self.stats_lines()
        assert lines, f'espd {self.name} printed no {{"stats":...}} line'
        return json.loads(lines[-1])["stats"]

    def stats(self, timeout=3):
        """SIGUSR1; waits for a new {"stats":...} line on stdout; returns its stats object."""
        assert self.alive(), f"espd {self.name} is not running (rc={self.proc.poll()}): {self.why()}"
        n = len(self.stats_lines())
        os.kill(self.proc.pid, signal.SIGUSR1)
        try:
            wait_for(lambda: len(self.stats_lines()) > n, timeout, interval=0.1)
        except TimeoutError:
            raise AssertionError(
                f'espd {self.name} printed no {{"stats":...}} line on stdout within {timeout} s of SIGUSR1'
            ) from None
        return self.last_stats()

    def counter(self, key, stats=None):
        """A counter of the last stats line (nettool.py stats: top level, global, total, drops, else
        the shallowest); None when espd has no such counter."""
        value, _ = find_counter(self.last_stats() if stats is None else stats, key)
        return None if value is None else int(value)

    def reload(self, timeout=5):
        """SIGHUP; waits for a new `reloaded` or `reload failed` line on stderr.
        Returns (ok, line, ms): ok only for `reloaded`; AssertionError if neither came in time."""
        assert self.alive(), f"espd {self.name} is not running: {self.why()}"

        def marks():
            try:
                with open(self.err, errors="replace") as f:
                    return [x.rstrip("\n") for x in f if "reloaded" in x or "reload failed" in x]
            except OSError:
                return []

        n = len(marks())
        t0 = time.monotonic()
        os.kill(self.proc.pid, signal.SIGHUP)
        while time.monotonic() - t0 < timeout:
            m = marks()
            if len(m) > n:
                return "reload failed" not in m[-1], m[-1], int((time.monotonic() - t0) * 1000)
            assert self.alive(), f"espd {self.name} exited after SIGHUP: {self.why()}"
            time.sleep(0.02)
        raise AssertionError(
            f"espd {self.name} logged neither 'reloaded' nor 'reload failed' within {timeout}s"
        )

    def memory(self):
        """(VmRSS, VmHWM) in kB."""
        rss = hwm = 0
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        return rss, hwm

    def terminate(self, timeout=3):
        """SIGTERM; (exit code, ms) once it exited, or (None, None) after timeout (still running)."""
        assert self.proc is not None, f"espd {self.name} was never started"
        rc = self.proc.poll()
        assert rc is None, f"espd {self.name} had already exited (rc={rc}): {self.why()}"
        t0 = time.monotonic()
        os.kill(self.proc.pid, signal.SIGTERM)
        rc = wait_exit(self.proc, timeout)
        return (None, None) if rc is None else (rc, int((time.monotonic() - t0) * 1000))

    def kill(self):
        """SIGKILL (after a failed check; the lab stops everything anyway)."""
        Procs.stop(self.proc, signal.SIGKILL)

    def stop(self, timeout=3, tun_timeout=1.0, final_stats=True):
        """The clean stop every suite checks: SIGTERM; espd exits 0 within timeout, prints a final
        {"stats":...} line (final_stats), and leaves no TUN device in its namespace (after
        tun_timeout). Returns the ms until the TUN was gone."""
        n = len(self.stats_lines())
        rc, _ = self.terminate(timeout)
        if rc is None:
            Procs.stop(self.proc, signal.SIGKILL)
            raise AssertionError(f"espd {self.name} did not exit within {timeout}s of SIGTERM (killed)")
        assert rc == 0, f"espd {self.name} exited {rc} after SIGTERM: {self.why()}"
        if final_stats:
            assert len(self.stats_lines()) > n, (
                f'espd {self.name} printed no {{"stats":...}} line on stdout at exit'
            )
        gone = self.ns.wait_no_tun(tun_timeout)
        assert gone is not None, (
            f"TUN device left in {self.ns.short} {tun_timeout} s after exit: {self.ns.tun_devices()}"
        )
        return gone


def find_counter(stats, key):
    """nettool.py's lookup of a counter in a stats object: (value, where) or (None, None)."""
    return nettool.find(stats, key)


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
