"""espd configurations for the espd-only live suites: scripts/netns/configs.py (shared with the bash
suites) writes them; `Configs` reads its scenario.json back. control.py's `Control` (a controller
for espd's control socket, as an IKE daemon speaks it) is importable from here too."""

import json
import os
import sys

from liveproc import run

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NETNS_SCRIPTS = os.path.join(REPO, "scripts", "netns")
CONFIGS_PY = os.path.join(NETNS_SCRIPTS, "configs.py")
CONTROL_PY = os.path.join(NETNS_SCRIPTS, "control.py")
FLOOD_PY = os.path.join(NETNS_SCRIPTS, "flood.py")
if NETNS_SCRIPTS not in sys.path:
    sys.path.insert(0, NETNS_SCRIPTS)

import configs  # noqa: E402  (scripts/netns/configs.py: ALGS, the address plan)
import control  # noqa: E402  (scripts/netns/control.py: Control)

ALGS = list(configs.ALGS)  # every algorithm espd supports, in configs.py's order
Control = control.Control


class Configs:
    """A directory written by configs.py: DIR/<host>.json and DIR/scenario.json."""

    def __init__(self, out):
        self.dir = out
        with open(os.path.join(out, "scenario.json")) as f:
            self.scenario = json.load(f)
        self.hosts = self.scenario["hosts"]

    def path(self, host):
        return os.path.join(self.dir, f"{host}.json")

    def load(self, host):
        with open(self.path(host)) as f:
            return json.load(f)

    def save(self, host, config):
        with open(self.path(host), "w") as f:
            json.dump(config, f, indent=1)

    def edit(self, host, fn):
        """Changes one host's config in place: fn(config) edits the dict."""
        c = self.load(host)
        fn(c)
        self.save(host, c)

    def control(self, host):
        """The control socket of a host's config."""
        return self.load(host)["control"]


def configs_py(*args, timeout=300):
    """Runs configs.py ARGS (bounded); raises AssertionError with its last line when it fails."""
    p = run([sys.executable, CONFIGS_PY, *map(str, args)], timeout=timeout, check=False)
    if p.returncode != 0:
        last = (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]
        raise AssertionError(f"configs.py {' '.join(map(str, args))} failed: {last[0]}")
    return p


def gen(out, kind, *args, espd=None):
    """configs.py KIND --out OUT ARGS (pair, nat, many), then `espd check` on every config it wrote
    (when espd is given); returns the Configs."""
    configs_py(kind, "--out", out, *args)
    if espd:
        p = run([sys.executable, CONFIGS_PY, "check", out, "--espd", espd], timeout=300, check=False)
        if p.returncode != 0:
            head = " ".join((p.stdout + p.stderr).strip().splitlines()[:2])
            raise AssertionError(f"espd check rejects a generated config: {head}")
    return Configs(out)
