"""The lab of the espd-only live suites (netns, nat, control, hostile, soak, bench): one session (root,
tools, a copy of espd, a work dir, a namespace prefix unique to the run) and, per test, a NetLab:
the pair or nat topology (livenet.py), espd instances (liveespd.EspdRun), background tools, all
stopped by PID and deleted at the test's end, then checked: nothing of the test may be left."""

import os
import shutil
import sys
import tempfile

from liveconfigs import Configs, gen
from liveespd import EspdRun
from livenet import NETTOOL, NatTopology, PairTopology, words
from liveproc import Procs, run, tail, wait_exit

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = ("ip", "nft", "ss", "iperf3", "tshark", "dumpcap", "conntrack")


class Unavailable(Exception):
    """Why the espd-only live suites cannot run here."""


def espd_source():
    """$ESPD (relative to the repository), else the newer of .build/release/espd and .build/debug/espd."""
    source = os.environ.get("ESPD")
    if not source:
        rel, dbg = (os.path.join(REPO, ".build", b, "espd") for b in ("release", "debug"))
        source = (
            rel
            if os.path.exists(rel)
            and (not os.path.exists(dbg) or os.path.getmtime(rel) >= os.path.getmtime(dbg))
            else dbg
        )
    if not os.path.isabs(source):
        source = os.path.join(REPO, source)
    return source


class NetSession:
    """One run: a /tmp work dir (kept with KEEP=1), a copy of espd (a rebuild meanwhile does not change
    the binary under test), a namespace prefix unique to the run (espd-p<PID>)."""

    def __init__(self):
        if os.geteuid() != 0:
            raise Unavailable("the live tests need root (network namespaces)")
        missing = [t for t in TOOLS if not shutil.which(t)]
        if missing:
            raise RuntimeError(f"missing: {' '.join(missing)} (run scripts/bootstrap.sh)")
        source = espd_source()
        if not os.access(source, os.X_OK):
            raise RuntimeError(f"espd binary not found: {source} (set ESPD)")
        self.tmp = tempfile.mkdtemp(prefix="espd-netns.")
        os.chmod(self.tmp, 0o755)
        self.espd_source = source
        self.espd = os.path.join(self.tmp, "espd")
        shutil.copy2(source, self.espd)
        self.prefix = f"espd-p{os.getpid()}"
        self.count = 0

    def describe(self):
        v = run([self.espd, "--version"], check=False).stdout.strip().splitlines()[:1]
        return f"espd: {self.espd_source} ({' '.join(v)}); work dir {self.tmp}; namespaces {self.prefix}-*"

    def leftovers(self):
        """Namespaces of this run still there, and a TUN device in the root namespace."""
        out = run(["ip", "netns", "list"], check=False).stdout
        left = [f"namespace {x.split()[0]}" for x in out.splitlines() if x.startswith(self.prefix + "-")]
        if run(["ip", "link", "show", "espd0"], check=False).returncode == 0:
            left.append("espd0 in the root namespace")
        return left

    def close(self, keep=False):
        if keep or os.environ.get("KEEP"):
            print(f"\nlogs, configs and captures in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class NetLab:
    """One test: its work dir, its processes, its topology (pair() or nat(n)), its espd instances."""

    def __init__(self, session: NetSession, name):
        session.count += 1
        self.session = session
        self.espd_binary = session.espd
        self.dir = os.path.join(session.tmp, name)
        os.makedirs(self.dir)
        self.prefix = f"{session.prefix}-{session.count}"
        self.procs = Procs()
        self.topo = None
        self.espds = {}
        self.bgs = {}  # name -> Popen of the background processes (bg, tool_bg, python_bg)
        self.figures = []

    # ---------------------------------------------------------------- topology
    def pair(self):
        """a <-> b (livenet.PairTopology); returns the topology."""
        self.topo = PairTopology(self.prefix)
        return self.topo

    def nat(self, clients=2):
        """gw <-> nat <-> c1..cN (livenet.NatTopology); returns the topology."""
        self.topo = NatTopology(self.prefix, clients)
        return self.topo

    def ns(self, short):
        return self.topo[short]

    # ---------------------------------------------------------------- configs and espd
    def configs(self, kind, *args, name="cfg", check=True):
        """configs.py KIND into DIR/NAME, each config checked with `espd check`; a Configs."""
        return gen(os.path.join(self.dir, name), kind, *args, espd=self.espd_binary if check else None)

    def espd_instance(self, host, config, *args, name=None):
        """An EspdRun in namespace HOST (config: a path, or a Configs: its HOST.json; ARGS for
        `espd run`), not started (launch() it); registered as self.espds[name or "espd-HOST"]."""
        path = config.path(host) if isinstance(config, Configs) else config
        name = name or f"espd-{host}"
        e = EspdRun(self.ns(host), name, self.espd_binary, path, self.procs, self.dir, args)
        self.espds[name] = e
        return e

    def espd(self, host, config, *args, timeout=8, name=None):
        """espd_instance(...) started: returns once it is ready (EspdRun.start)."""
        return self.espd_instance(host, config, *args, name=name).start(timeout)

    # ---------------------------------------------------------------- background tools
    def bg(self, name, host, argv):
        """A background process in namespace HOST: stdout NAME.out, stderr NAME.err; the Popen."""
        p = self.procs.start(
            self.ns(host).argv(argv), self.log(f"{name}.out"), err_path=self.log(f"{name}.err")
        )
        self.bgs[name] = p
        return p

    def tool_bg(self, name, host, *args):
        """nettool.py ARGS in the background (udp-server, echo-tag, flow, ping ...); ARGS as values or
        as one string of words."""
        return self.bg(name, host, [sys.executable, NETTOOL, *words(args)])

    def python_bg(self, name, host, script, *args):
        """A Python script (e.g. scripts/ike_responder.py) in the background."""
        return self.bg(name, host, [sys.executable, script, *map(str, args)])

    def log(self, name):
        return os.path.join(self.dir, name)

    def read(self, name):
        with open(self.log(name), errors="replace") as f:
            return f.read()

    def tail(self, name, lines=2):
        return tail(self.log(name), lines)

    @staticmethod
    def wait_exit(p, timeout):
        return wait_exit(p, timeout)

    def info(self, text):
        """A figure of the test: printed (-s) and kept for the junit XML (record_property)."""
        self.figures.append(text)
        print(text)

    # ---------------------------------------------------------------- the end
    def close(self):
        """Stops every process (SIGTERM, then SIGKILL) and deletes the namespaces; returns what was
        left behind (namespaces, processes), which must be nothing."""
        procs = list(self.procs.procs)
        self.procs.stop_all()
        if self.topo is not None:
            self.topo.destroy()
        out = run(["ip", "netns", "list"], check=False).stdout
        left = [f"namespace {x.split()[0]}" for x in out.splitlines() if x.startswith(self.prefix + "-")]
        return left + [f"process {p.pid}" for p in procs if p.poll() is None]
