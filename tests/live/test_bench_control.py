"""The control path at scale (was scripts/bench-control.sh): for each tunnel count N, espd starts (in
a network namespace of its own) with N responder tunnels written by `bench control config`, and this
measures
  start-up      from exec until the control socket answers {"op":"subscribe"} (`bench control wait`:
                the socket exists early, the answer comes once tunnels, routes and loops are up)
  memory        VmRSS once started; per tunnel = (RSS_N - RSS_0) / N, RSS_0 from an espd with none
  control path  `bench control run`: hitless rekey steps one request at a time (rekey_serial) and
                pipelined (rekey_pipelined), add_tunnel + delete_tunnel pairs (tunnel_churn_serial),
                stats answers (stats_serial); answer times p50/p99/max
  shutdown      SIGTERM until espd exits (at most 120 s, then SIGKILL)
then prints a table and the targets (issue 14): at 100,000 and 1,000,000 tunnels >= 5,000 rekey
steps/s one at a time with p99 <= 2 ms; the rate at 1,000,000 >= 0.8 x the rate at 1,000; RSS per
tunnel <= 4.6 KB (at the largest N). Figures are printed, never asserted, unless BENCH_CONTROL_GATE=1.
A run fails when espd does not start, `bench control run` fails, or espd does not exit 0.

Parameters (environment, the bash options' defaults):
  BENCH_CONTROL_TUNNELS  tunnel counts (--tunnels, default "1000 10000 100000 1000000")
  BENCH_CONTROL_STEPS    rekey steps per rekey case (--steps, default 5000); churn pairs are K/5
  BENCH_CONTROL_WORKERS  espd run --workers (default 1)
  BENCH                  the bench binary (--bench, default .build/release/bench); ESPD: espd
  BENCH_CONTROL_OUT      the JSON lines of every case (--out, default
                         .build/bench-control/results-<time>.jsonl)
  BENCH_CONTROL_DEPTH    outstanding requests in rekey_pipelined (--depth, default 64)
  BENCH_CONTROL_PIN      none (default) | same (client and espd's control thread on CPU 0) | cross
                         (control thread on CPU 0, client on CPU 1)
  BENCH_CONTROL_BUSY_POLL=1  the client spins for answers (bench --busy-poll)
  BENCH_CONTROL_STATS_REQUEST  what stats_serial sends (--stats-request, default {"op":"stats"})
  BENCH_CONTROL_GATE=1   fail if a measured target is missed (one not measured is reported)

    sudo ESPD=.build/release/espd BENCH_CONTROL_TUNNELS="1000 10000" BENCH_CONTROL_STEPS=2000 \\
        BENCH_CONTROL_STATS_REQUEST='{"op":"stats","tunnels":false}' \\
        python3 -m pytest -q -s -rxXs -m bench tests/live -k bench-control
"""

import json
import os
import platform
import shutil
import time

import pytest

from livebench import commit, env, fmt, fresh_ns, repo_path, stamp, stop_process
from livecontrol import named, rss_kb
from liveproc import run

pytestmark = pytest.mark.bench

ROW_FORMAT = "%9s | %10s | %10s | %9s | %8s | %8s | %8s | %11s | %9s | %8s | %8s | %8s"
HEADINGS = ("tunnels", "start-up s", "RSS/tun KB", "rekey/s", "p50 ms", "p99 ms", "max ms")
HEADINGS += ("pipelined/s", "add+del/s", "p99 ms", "stats/s", "p99 ms")


class Settings:
    def __init__(self, net):
        self.tunnels = env("BENCH_CONTROL_TUNNELS", "1000 10000 100000 1000000").split()
        assert self.tunnels, "BENCH_CONTROL_TUNNELS: empty list"
        for n in self.tunnels:
            assert n.isdigit() and int(n) >= 1, f"BENCH_CONTROL_TUNNELS: bad tunnel count {n}"
        self.tunnels = [int(n) for n in self.tunnels]
        self.steps = int(env("BENCH_CONTROL_STEPS", "5000", r"[0-9]+", "a count"))
        assert self.steps >= 5, "BENCH_CONTROL_STEPS: at least 5"
        self.workers = int(env("BENCH_CONTROL_WORKERS", "1", r"[1-9][0-9]*", "a count of at least 1"))
        self.depth = int(env("BENCH_CONTROL_DEPTH", "64", r"[1-9][0-9]*", "a count of at least 1"))
        self.pin = env("BENCH_CONTROL_PIN", "none", r"none|same|cross", "none, same or cross")
        self.busy = env("BENCH_CONTROL_BUSY_POLL", "0") == "1"
        self.gate = env("BENCH_CONTROL_GATE", "0") == "1"
        self.stats_request = env("BENCH_CONTROL_STATS_REQUEST", '{"op":"stats"}')
        self.espd = net.espd_binary  # the session's copy of $ESPD (printed: $ESPD)
        self.espd_shown = net.session.espd_source
        self.bench = repo_path(env("BENCH", ".build/release/bench"))
        assert os.access(self.bench, os.X_OK), f"bench binary {self.bench} not found (swift build -c release)"
        p = run([self.bench, "control", "--help"], check=False)
        assert p.returncode == 0, f"{self.bench} has no 'control' benchmark (an older build?)"
        assert self.pin != "cross" or os.cpu_count() >= 2, "BENCH_CONTROL_PIN=cross needs two CPUs"
        self.out = repo_path(env("BENCH_CONTROL_OUT", f".build/bench-control/results-{stamp()}.jsonl"))
        os.makedirs(os.path.dirname(self.out), exist_ok=True)


def control_tid(pid):
    """The thread espd names espd-control (None if there is none)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() == "espd-control":
                    return tid
        except OSError:
            pass
    return None


class Run:
    """One espd with N tunnels in a fresh namespace: started, timed until it answers, stopped."""

    def __init__(self, net, s, n):
        self.net, self.s, self.n = net, s, n
        self.cfg, self.sock = net.log(f"c{n}.json"), net.log(f"c{n}.sock")
        self.proc = None

    def start(self):
        """Config, exec, wait for the answer; (start-up seconds, RSS kB), or an AssertionError."""
        s = self.s
        argv = [s.bench, "control", "config", "--tunnels", self.n, "--out", self.cfg]
        run([*map(str, argv), "--control", self.sock, "--tun", "espdcb0"], timeout=3600)
        (ns,) = fresh_ns(self.net, "cb")
        t0 = time.monotonic()
        argv = ns.argv([s.espd, "run", "--config", self.cfg, "--workers", str(s.workers)])
        out, err = self.net.log(f"espd-{self.n}.out"), self.net.log(f"espd-{self.n}.err")
        self.proc = self.net.procs.start(argv, out, err_path=err)
        wait = [
            s.bench,
            "control",
            "wait",
            "--control",
            self.sock,
            "--pid",
            str(self.proc.pid),
            "--timeout",
            "3600",
        ]
        p = run(wait, check=False, timeout=3700)
        assert p.returncode == 0, (
            f"espd with {self.n} tunnels did not come up; its log ends: "
            f"{self.net.tail(f'espd-{self.n}.err', 5)}"
        )
        startup = time.monotonic() - t0
        rss = rss_kb(self.proc.pid)
        os.unlink(self.cfg)  # up to 260 MB
        return f"{startup:.3f}", rss

    def stop(self, timeout):
        """SIGTERM, SIGKILL after timeout: (seconds as text, exit status)."""
        if self.proc is None:
            return "", ""
        rc, secs = stop_process(self.proc, timeout)
        self.proc = None
        return f"{secs:.2f}", rc

    def client(self):
        """bench control run, pinned as BENCH_CONTROL_PIN says; its JSON lines and exit code."""
        s = self.s
        prefix = [s.bench]
        if s.pin in ("same", "cross"):
            tid = control_tid(self.proc.pid)
            assert tid, f"no espd-control thread in espd (pid {self.proc.pid})"
            run(["taskset", "-p", "-c", "0", tid])
            prefix = ["taskset", "-c", "0" if s.pin == "same" else "1", s.bench]
        argv = [*prefix, "control", "run", "--json", "--control", self.sock, "--tunnels", str(self.n)]
        argv += ["--steps", str(s.steps), "--depth", str(s.depth), "--stats-request", s.stats_request]
        argv += ["--busy-poll"] if s.busy else []
        p = run(argv, check=False, timeout=3600)
        return p.stdout.strip(), p.returncode


def result(lines, case, field):
    """A field of the first line of that case ("-" when absent)."""
    for line in lines:
        if line.get("case") == case:
            v = line.get(field)
            return "-" if v is None else v
    return "-"


def num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def targets(s, rate, p99, rsspt):
    """The targets, each met / NOT met / not measured; (lines, how many measured ones were missed)."""
    lines, missed = [], 0

    def v(ok):
        nonlocal missed
        missed += 0 if ok else 1
        return "met" if ok else "NOT met"

    for n in (100000, 1000000):
        if num(rate.get(n)) and num(p99.get(n)):
            rv, pv = v(rate[n] >= 5000), v(p99[n] <= 2)
            lines.append(
                f"  {n} tunnels: >= 5000 rekey steps/s one at a time ({rate[n]}): {rv}; "
                f"p99 <= 2 ms ({p99[n]}): {pv}"
            )
        else:
            lines.append(f"  {n} tunnels: >= 5000 rekey steps/s one at a time, p99 <= 2 ms: not measured")
    if num(rate.get(1000000)) and num(rate.get(1000)):
        ok = v(rate[1000000] >= 0.8 * rate[1000])
        lines.append(f"  rate at 1,000,000 >= 0.8 x rate at 1,000 ({rate[1000000]} vs {rate[1000]}): {ok}")
    else:
        lines.append("  rate at 1,000,000 >= 0.8 x rate at 1,000: not measured (needs both in --tunnels)")
    measured = [n for n in s.tunnels if num(rsspt.get(n))]
    if measured:
        largest = max(measured)
        ok = v(rsspt[largest] <= 4.6)
        lines.append(f"  RSS per tunnel <= 4.6 KB (at {largest} tunnels: {rsspt[largest]:.2f}): {ok}")
    else:
        lines.append("  RSS per tunnel <= 4.6 KB: not measured")
    return lines, missed


@named("name", {"bench-control": "bench-control"})
def test_bench_control(net, name):
    s = Settings(net)
    header = {
        "header": "bench-control", "commit": commit(), "espd": s.espd_shown, "workers": s.workers,
        "steps": s.steps, "depth": s.depth, "pin": s.pin, "busy_poll": s.busy,
        "stats_request": s.stats_request, "cpus": os.cpu_count(), "kernel": platform.release(),
    }  # fmt: skip
    with open(s.out, "w") as f:
        f.write(json.dumps(header, separators=(",", ":")) + "\n")

    def record(obj):
        with open(s.out, "a") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":")))
            f.write("\n")

    print("\nbaseline: espd with 0 tunnels")
    base = Run(net, s, 0)
    startup, rss0 = base.start()
    stop_s, rc = base.stop(120)
    print(f"baseline: start-up {startup} s, RSS {rss0} kB")
    record(
        f'{{"case":"espd_start","tunnels":0,"startup_s":{startup},"rss_kb":{rss0},"shutdown_s":{stop_s},"exit":{rc}}}'
    )
    failed = []
    rows, rate, p99, rsspt = {}, {}, {}, {}
    for n in s.tunnels:
        print(f"N={n}: writing the configuration and starting espd")
        r = Run(net, s, n)
        try:
            startup, rss = r.start()
        except AssertionError as e:
            failed.append(str(e))
            r.stop(10)
            rows[n] = f"{n:>10} | espd did not start (log: {net.log(f'espd-{n}.err')})"
            continue
        rsspt[n] = (rss - rss0) / n
        print(
            f"N={n}: up in {startup} s, RSS {rss} kB ({rsspt[n]:.2f} KB per tunnel); "
            "running bench control run"
        )
        out, rc = r.client()
        if rc != 0:
            failed.append(f"N={n}: bench control run exited {rc} (espd log: {net.log(f'espd-{n}.err')})")
            print(failed[-1])
        if r.proc.poll() is not None:
            failed.append(f"N={n}: espd exited during the run (log: {net.log(f'espd-{n}.err')})")
            print(failed[-1])
        if out:
            record(out)
        lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        print(f"N={n}: stopping espd (SIGTERM)")
        stop_s, rc = r.stop(120)
        print(f"N={n}: stopped in {stop_s} s (exit {rc})")
        if rc != 0:
            failed.append(f"N={n}: espd exited {rc} after SIGTERM")
        record(
            f'{{"case":"espd_start","tunnels":{n},"startup_s":{startup},"rss_kb":{rss},'
            f'"rss_per_tunnel_kb":{rsspt[n]:.2f},"shutdown_s":{stop_s},"exit":{rc}}}'
        )
        rate[n], p99[n] = (
            result(lines, "rekey_serial", "steps_per_s"),
            result(lines, "rekey_serial", "p99_ms"),
        )
        rows[n] = ROW_FORMAT % (
            n, startup, f"{rsspt[n]:.2f}", fmt(rate[n], 1), fmt(result(lines, "rekey_serial", "p50_ms"), 3),
            fmt(p99[n], 3), fmt(result(lines, "rekey_serial", "max_ms"), 3),
            fmt(result(lines, "rekey_pipelined", "steps_per_s"), 1),
            fmt(result(lines, "tunnel_churn_serial", "pairs_per_s"), 1),
            fmt(result(lines, "tunnel_churn_serial", "p99_ms"), 3),
            fmt(result(lines, "stats_serial", "answers_per_s"), 1),
            fmt(result(lines, "stats_serial", "p99_ms"), 3),
        )  # fmt: skip
    rsspt = {n: float(f"{v:.2f}") for n, v in rsspt.items()}  # as the bash compared them: two decimals
    print()
    print(
        f"control path: espd {s.espd_shown}, --workers {s.workers}, {s.steps} rekey steps, pin {s.pin}"
        f"{', busy-poll' if s.busy else ''}, baseline RSS {rss0} kB"
    )
    print(ROW_FORMAT % HEADINGS)
    for n in s.tunnels:
        print(rows[n])
    print(
        "(rekey/s: hitless rekey steps per second one request at a time, 3 requests each; pipelined/s: "
        f"the same\n with up to {s.depth} requests outstanding; add+del/s: add_tunnel + delete_tunnel "
        "pairs; times: from the\n request written to its answer read)"
    )
    lines, missed = targets(s, rate, p99, rsspt)
    print("\ntargets:")
    for line in lines:
        print(line)
        net.figures.append(line.strip())
    print(f"results: {s.out}")
    net.figures.extend(rows[n] for n in s.tunnels)
    if failed:
        shutil.copy(s.out, net.log("results.jsonl"))
    assert not failed, "some runs failed: " + "; ".join(failed)
    assert not (s.gate and missed), f"BENCH_CONTROL_GATE: {missed} target(s) not met"
