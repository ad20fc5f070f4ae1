"""What the control, hostile, soak and bench suites share: scripts/netns/control.py (a client of espd's
control socket, as an IKE daemon speaks it) and the espd CLI run with their output kept in the test's
dir, espd's counters read from a whole {"stats":...} line, the drop reasons a live tunnel never
has, bash's `fail` (Checks: the test goes on, every failure is reported at its end) and its
`retry_once` (a load test gets a second try in a fresh lab)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from liveconfigs import CONTROL_PY, FLOOD_PY
from liveproc import run, wait_exit

# The drop reasons a live tunnel never has, whatever the load (control-test.sh's DROP_KEYS).
DROP_KEYS = (
    "unknown_spi",
    "auth_failed",
    "replayed",
    "outside_window",
    "expired",
    "malformed",
    "bad_padding",
    "selector_mismatch",
    "crypto_failure",
)


def named(argname, cases):
    """Parametrizes ARGNAME with CASES {bash test name: value}: the pytest id is the bash name."""
    return pytest.mark.parametrize(argname, [pytest.param(v, id=k) for k, v in cases.items()])


class Checks:
    """bash's `fail`: a failed check is recorded and the test goes on; done() raises them all (the
    first line is the first failure). Fatal steps (bash's `|| return`) use a plain assert."""

    def __init__(self):
        self.fails = []

    def check(self, ok, msg):
        if not ok:
            self.fails.append(msg() if callable(msg) else msg)
        return bool(ok)

    def fail(self, msg):
        self.fails.append(msg)

    def done(self):
        if self.fails:
            raise AssertionError("\n".join(self.fails))


def jload(text):
    """JSON text parsed; {} when it is not JSON (jq -e on a bad file: the check fails)."""
    try:
        v = json.loads(text)
    except (ValueError, TypeError):
        return {}
    return v if isinstance(v, dict) else {}


def last_json(path):
    """The last line of a file that parses as a JSON object ({} if none)."""
    try:
        with open(path, errors="replace") as f:
            lines = [x for x in f.read().splitlines() if x.startswith("{")]
    except OSError:
        return {}
    return jload(lines[-1]) if lines else {}


def new_key(nbytes=20):
    """A random key in hex (20 bytes: aes128gcm16's key and salt)."""
    return os.urandom(nbytes).hex()


def waited(pred, timeout, interval=0.1):
    """tp_wait: polls pred until it holds (True) or timeout seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def file_has(path, text):
    try:
        with open(path, errors="replace") as f:
            return text in f.read()
    except OSError:
        return False


# ------------------------------------------------------------------ control.py and the espd CLI


def _kept(net, name, p):
    for ext, text in ((".out", p.stdout), (".err", p.stderr)):
        with open(net.log(name + ext), "w") as f:
            f.write(text)
    return p


def ctl(net, name, *args, check=True, timeout=300):
    """control.py ARGS to completion (in the root namespace, as the bash suites ran it), its output
    in NAME.out / NAME.err; AssertionError with their ends when check and it fails."""
    p = run([sys.executable, CONTROL_PY, *map(str, args)], check=False, timeout=timeout)
    _kept(net, name, p)
    if check and p.returncode != 0:
        raise AssertionError(f"control.py {name}: {p.stderr[-300:]}{p.stdout[-300:]}")
    return p


def ctl_bg(net, name, host, *args):
    """control.py ARGS in the background in namespace HOST (NAME.out / NAME.err); the Popen."""
    return net.python_bg(name, host, CONTROL_PY, *args)


def flood_bg(net, name, host, *args):
    """scripts/netns/flood.py ARGS in the background in namespace HOST; the Popen."""
    return net.python_bg(name, host, FLOOD_PY, *args)


def cli(net, name, *args, input=None, check=True, timeout=30):
    """The espd CLI (net.espd_binary ARGS), its output in NAME.out / NAME.err; AssertionError with
    the start of its stderr when check and it fails."""
    p = run([net.espd_binary, *map(str, args)], check=False, timeout=timeout, input=input)
    _kept(net, name, p)
    if check and p.returncode != 0:
        raise AssertionError(f"espd {' '.join(map(str, args))}: {p.stderr[:300]}")
    return p


def finished(p, timeout, late):
    """tp_wait_exit: the exit code of a background process; AssertionError(late) if it is still
    running after timeout seconds."""
    rc = wait_exit(p, timeout)
    assert rc is not None, late
    return rc


# ------------------------------------------------------------------ espd on both ends


def pair_up(net, cfg, args=(), timeout=8):
    """The pair topology and espd on a and b (configs CFG, `espd run` ARGS, e.g. --workers 2)."""
    net.pair()
    return net.espd("a", cfg, *args, timeout=timeout), net.espd("b", cfg, *args, timeout=timeout)


def stop_espds(net, checks, hosts=("a", "b"), timeout=3):
    """The clean stop of each espd-HOST (EspdRun.stop); a failure is recorded, the others still stop."""
    for h in hosts:
        try:
            net.espds[f"espd-{h}"].stop(timeout)
        except AssertionError as e:
            checks.fail(str(e))


def ip_lines(ns, *args):
    """Lines of `ip -n NS ARGS` ("" lines dropped; none if it fails)."""
    p = run(["ip", "-n", ns.name, *args], check=False, timeout=10)
    return [x for x in p.stdout.splitlines() if x.strip()]


# ------------------------------------------------------------------ espd's counters


def full_stats(e, timeout=5):
    """SIGUSR1; waits for a whole new {"stats":...} line (tens of MB with 100,000 tunnels: it ends
    with its newline); returns its stats object."""
    assert e.alive(), f"espd {e.name} is not running: {e.why()}"
    n = len(e.stats_lines())
    os.kill(e.pid, signal.SIGUSR1)

    def whole():
        lines = e.stats_lines()
        return len(lines) > n and lines[-1].endswith("\n")

    assert waited(whole, timeout), f"espd {e.name}: no stats line within {timeout}s of SIGUSR1"
    return e.last_stats()


def espd_counters(e, timeout=5):
    """control-test.sh's espd_counters: {"drops": {DROP_KEYS}, tun_write_dropped, udp_send_dropped,
    handoff_dropped, stall_ms, gap_ms, worker_stall_ms} from a fresh stats line."""
    s = full_stats(e, timeout)

    def ms(ns):
        return None if ns is None else ns / 1e6

    w = s.get("workers")
    return {
        "drops": {k: s.get("drops", {}).get(k) for k in DROP_KEYS},
        **{k: s.get(k) for k in ("tun_write_dropped", "udp_send_dropped", "handoff_dropped")},
        "stall_ms": ms(s.get("loop_stall_max_ns")),
        "gap_ms": ms(s.get("loop_gap_max_ns")),
        "worker_stall_ms": [ms(x.get("stall_max_ns")) for x in w] if w and "stall_max_ns" in w[0] else None,
    }


def no_espd_drops(net, checks, when, timeout=5, hosts=("a", "b")):
    """Neither espd dropped a packet for a reason a live tunnel never has; {host: espd_counters}."""
    out = {}
    for h in hosts:
        e = net.espds[f"espd-{h}"]
        try:
            out[h] = espd_counters(e, timeout)
        except AssertionError as err:
            checks.fail(str(err))
            continue
        for k in DROP_KEYS:
            v = out[h]["drops"][k]
            checks.check(v == 0, f"espd-{h} counted {k} = {'missing' if v is None else v} {when}")
    return out


def espd_losses(counters):
    """What both espds dropped for want of room: tun/udp/handoff drops a X/Y/Z, b X/Y/Z."""

    def three(c):
        if c is None:
            return "?"
        keys = ("tun_write_dropped", "udp_send_dropped", "handoff_dropped")
        return "/".join("-" if c.get(k) is None else str(c[k]) for k in keys)

    return f"espd tun/udp/handoff drops a {three(counters.get('a'))}, b {three(counters.get('b'))}"


def stall_text(c):
    """espd's longest loop stall (CPU time) in ms, per worker too, and the wall-clock gap; n/a."""
    if not c or c.get("stall_ms") is None:
        return "n/a"
    t = f"{round(c['stall_ms'], 3)} ms"
    if c.get("gap_ms"):
        t += f" (wall clock, with time preempted: {round(c['gap_ms'], 3)} ms)"
    if c.get("worker_stall_ms"):
        ws = ", ".join("n/a" if x is None else str(round(x, 3)) for x in c["worker_stall_ms"])
        t += f" (workers {ws})"
    return t


def rss_kb(pid):
    """VmRSS of a process in kB (EspdRun.memory for an espd of the lab)."""
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))


def fds(pid):
    """How many descriptors a process holds."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def stat_ticks(path):
    """(name, utime + stime) from a /proc/.../stat file; None once it is gone."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return text[text.index("(") + 1 : text.rindex(")")], int(fields[11]) + int(fields[12])


def thread_ticks(pid):
    """{thread name: utime + stime ticks} of a process (names without a -N suffix summed)."""
    ticks = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return ticks
    for tid in tids:
        found = stat_ticks(f"/proc/{pid}/task/{tid}/stat")
        if found is None:
            continue
        name, n = found
        base = name.rsplit("-", 1)[0] if name.rsplit("-", 1)[-1].isdigit() else name
        ticks[base] = ticks.get(base, 0) + n
    return ticks


def cpu_text(before, after):
    """THREAD SECONDS, ... each thread used between two thread_ticks (those of 1/20 s or more)."""
    hz = os.sysconf("SC_CLK_TCK")
    used = {t: v - before.get(t, 0) for t, v in after.items()}
    return ", ".join(f"{t} {d / hz:.1f}" for t, d in sorted(used.items()) if d >= hz / 20)


def tun_drops(ns, dev="espd0"):
    """Packets the kernel dropped on their way into espd's TUN (its queue full); 0 if none."""
    try:
        return int(ns.link_stats(dev)["tx"].get("dropped", 0))
    except (RuntimeError, KeyError, IndexError, ValueError):
        return 0


def seconds_since(t0):
    return f"{time.monotonic() - t0:.1f}"


# ------------------------------------------------------------------ a second try


def fresh_lab(net):
    """bash's tp_teardown between two tries: every process stopped, the namespaces deleted; the
    next try writes into NAME/try2."""
    net.procs.stop_all()
    if net.topo is not None:
        net.topo.destroy()
        net.topo = None
    net.espds.clear()
    net.figures.clear()
    net.dir = os.path.join(net.dir, "try2")
    os.makedirs(net.dir, exist_ok=True)


def retry_once(net, body):
    """control-test.sh's retry_once: a load test gets a second try after a failure (a 2-vCPU VM's
    scheduling noise can lose a datagram in either run); the first try's failure is reported either
    way."""
    try:
        return body()
    except (AssertionError, TimeoutError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
    fresh_lab(net)
    try:
        result = body()
    except (AssertionError, TimeoutError) as e:
        raise AssertionError(f"{e}\nthe first try failed too: {first}") from None
    net.info(f"passed on the second try; the first failed: {first}")
    return result


def timed_output(argv, path, seconds):
    """Runs argv for at most `seconds` (then SIGTERM, as timeout(1) ends it), stdout and stderr
    into path; returns the text."""
    with open(path, "w") as f:
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if wait_exit(p, seconds) is None:
            p.terminate()
            if wait_exit(p, 3) is None:
                p.kill()
                p.wait()
    with open(path, errors="replace") as f:
        return f.read()
