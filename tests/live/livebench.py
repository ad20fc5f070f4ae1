"""What the benchmark drivers (test_bench_*.py, marker bench; were scripts/bench-*.sh) share: their
parameters from environment variables with the bash defaults, `column -t` and jq's number format for
the tables they print, a fresh namespace per espd, and espd started and stopped the way the bash
drivers timed it (SIGTERM, then SIGKILL; the exit status as bash's $?)."""

import math
import os
import re
import signal
import time

from livecontrol import stat_ticks
from livenet import Namespaces
from liveproc import run, wait_exit
from netlab import REPO


def env(name, default, pattern=None, what=None):
    """$NAME or the default; AssertionError naming it when it does not match pattern (a regex)."""
    value = os.environ.get(name, default)
    if pattern is not None:
        assert re.fullmatch(pattern, value), f"{name}: {what or 'expected ' + pattern}, got {value!r}"
    return value


def repo_path(path):
    return path if os.path.isabs(path) else os.path.join(REPO, path)


def stamp():
    return time.strftime("%Y%m%d-%H%M%S")


def commit():
    p = run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"], check=False)
    return p.stdout.strip() or "unknown"


def jq_round(x):
    """jq's round: half away from zero."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def jq_num(x):
    """A number as jq's tostring writes it (12.0 -> 12, 12.5 -> 12.5)."""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def fmt(value, digits):
    """bench-control.sh's fmt: fixed decimals for a number, the text as it is otherwise ("-")."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    if isinstance(value, str) and re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        return f"{float(value):.{digits}f}"
    return str(value)


def columns(rows):
    """`column -t`: each column as wide as its widest cell, two spaces between columns."""
    rows = [[str(x) for x in r] for r in rows]
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    return "\n".join("  ".join(x.ljust(widths[i]) for i, x in enumerate(r)).rstrip() for r in rows)


def fresh_ns(net, *shorts):
    """Fresh namespaces PREFIX-SHORT (lo up, no DAD): nothing one run left behind reaches the next
    (whatever net.topo held is deleted first); returns them."""
    if net.topo is not None:
        net.topo.destroy()
    net.topo = Namespaces(net.prefix)
    return [net.topo.add(s) for s in shorts]


def exit_status(rc):
    """A Popen return code as bash's $? (killed by signal N: 128 + N)."""
    return 128 - rc if rc is not None and rc < 0 else rc


def stop_process(p, timeout, kill_status=137):
    """SIGTERM, up to timeout seconds, then SIGKILL: (exit status as bash's $?, seconds taken); the
    status is kill_status when it had to be killed (bench-control.sh's stop_espd)."""
    t0 = time.monotonic()
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    rc = wait_exit(p, timeout)
    if rc is None:
        p.kill()
        p.wait()
        rc = None
    status = kill_status if rc is None else exit_status(rc)
    return status, time.monotonic() - t0


def ticks(*pids):
    """utime + stime of processes (all their threads), in clock ticks."""
    return sum((stat_ticks(f"/proc/{pid}/stat") or ("", 0))[1] for pid in pids)
