"""`espd run --workers N` against `--workers 1`, in one run (was scripts/bench-workers.sh): UDP
64-byte datagrams in many flows, one per tunnel (a concentrator's load: many clients, each with its
own SAs), between two network namespaces over a veth.

Parameters (environment, the bash options' defaults):
  BENCH_WORKERS_SECONDS  iperf3 duration per run (-d, default 10)
  BENCH_WORKERS_TUNNELS  tunnels, each carrying one iperf3 UDP flow (-k, default 4; 1 to 64)
  BENCH_WORKERS_LIST     worker counts to measure (-w, default "1 2"; the first is the baseline)
  BENCH_WORKERS_RATE     offered load per flow, iperf3 -b (-b, default 0: unlimited; 25M is ~49k
                         datagrams/s of 64 B, with 4 tunnels about 195k/s, what one worker carries here)
  BENCH_WORKERS_OUT      results directory (-o, default scripts/results/workers-<timestamp>, gitignored)
  ESPD                   the binary

Side a sends, side b receives; each side runs espd with the same --workers. Underlay 192.0.2.1/.2,
tunnel k carries 198.51.100.k <-> 203.0.113.k. Printed per worker count: datagrams received per
second (sum over the flows, iperf3 receiver side), loss, the datagrams side b's espd opened per
second, CPU of both espd processes, packets each worker processed and handed over; then the ratios
to the baseline (target for 2 workers: at least 1.6x, printed, not asserted). On a machine with few
CPUs the iperf3 processes compete with espd for them: the received rate then also says how the
scheduler shared the CPUs out, and the opened rate is espd's own. A worker count whose run could
not be set up (espd not up, no ping through a tunnel) fails the test after the others ran.

    sudo ESPD=.build/release/espd python3 -m pytest -q -s -rxXs -m bench tests/live -k bench-workers
"""

import json
import os
import time

import pytest

from livebench import columns, env, fresh_ns, jq_num, jq_round, repo_path, stamp, stop_process, ticks
from livecontrol import jload, named
from liveproc import run

pytestmark = pytest.mark.bench

HEADER = ["workers", "rx_kpps", "sent_kpps", "loss_pct", "opened_kpps_b", "espd_cpu_pct"]
HEADER += ["worker_packets_b", "handed_over_b", "handoff_dropped"]


def write_configs(work, k):
    """K tunnels between a and b, one SA pair each, random keys: WORK/a.json and WORK/b.json."""
    # Per tunnel i: the a -> b SA and the b -> a SA.
    ab = {i: (f"0x{0xA0000000 + i:08x}", os.urandom(20).hex()) for i in range(1, k + 1)}
    ba = {i: (f"0x{0xB0000000 + i:08x}", os.urandom(20).hex()) for i in range(1, k + 1)}

    def side(me, peer, name, mine, theirs, out, inb):
        return {
            "listen": [f"{me}:4500"],
            "control": f"{work}/{name}.sock",
            "tun": {
                "name": f"bw{name}",
                "mtu": 1438,
                "addresses": [f"{mine}.{i}/32" for i in range(1, k + 1)],
            },
            "tunnels": [
                {
                    "name": f"t{i}",
                    "mode": "tunnel",
                    "peer": f"{peer}:4500",
                    "remote_ts": [f"{theirs}.{i}/32"],
                    "inbound": [{"spi": inb[i][0], "alg": "aes128gcm16", "key": inb[i][1]}],
                    "outbound": {"spi": out[i][0], "alg": "aes128gcm16", "key": out[i][1]},
                }
                for i in range(1, k + 1)
            ],
        }

    for name, cfg in (
        ("a", side("192.0.2.1", "192.0.2.2", "a", "198.51.100", "203.0.113", ab, ba)),
        ("b", side("192.0.2.2", "192.0.2.1", "b", "203.0.113", "198.51.100", ba, ab)),
    ):
        with open(f"{work}/{name}.json", "w") as f:
            json.dump(cfg, f)


def log(text):
    print(f"{time.strftime('%T')} {text}")


def row(w, jsons, cpu, opened, last):
    """One results.tsv row from the iperf3 JSONs of a run and b's last stats answer."""
    ends = [jload(j).get("end", {}) for j in jsons]
    r = [e.get("sum_received") or {"packets": 0, "lost_packets": 0, "seconds": 1} for e in ends]
    s = [e.get("sum_sent") or {"packets": 0, "seconds": 1} for e in ends]
    rx = jq_round(sum((x["packets"] - x["lost_packets"]) / x["seconds"] for x in r) / 1e3 * 100) / 100
    sent = jq_round(sum(x["packets"] / x["seconds"] for x in s) / 1e3 * 100) / 100
    loss = jq_round(sum(x["lost_packets"] for x in r) / max(sum(x["packets"] for x in r), 1) * 10000) / 100
    st = (last or {}).get("stats")
    workers = "/".join(str(x.get("packets")) for x in st.get("workers") or []) if st else "-"
    handed = st.get("handoff_packets", 0) if st else "-"
    dropped = st.get("handoff_dropped", 0) if st else "-"
    return [str(w), jq_num(rx), jq_num(sent), jq_num(loss), opened, cpu, workers, str(handed), str(dropped)]


def measure(net, espd, w, k, dur, rate, work, outdir):
    """One run with --workers W on both sides; its results row (AssertionError: not set up)."""
    a, b = fresh_ns(net, "a", "b")
    net.topo.veth("a", "bwa0", "b", "bwb0")
    a.addr("bwa0", "192.0.2.1/24")
    b.addr("bwb0", "192.0.2.2/24")
    pa = net.procs.start(
        a.argv([espd, "run", "--config", f"{work}/a.json", "--workers", str(w)]),
        f"{work}/a-{w}.out",
        err_path=f"{outdir}/a-{w}.log",
    )
    pb = net.procs.start(
        b.argv([espd, "run", "--config", f"{work}/b.json", "--workers", str(w)]),
        f"{work}/b-{w}.out",
        err_path=f"{outdir}/b-{w}.log",
    )
    up = False
    for _ in range(100):
        if "dev bwa" in a.route_get(f"203.0.113.{k}") and "dev bwb" in b.route_get(f"198.51.100.{k}"):
            up = True
            break
        if pa.poll() is not None or pb.poll() is not None:
            break
        time.sleep(0.1)
    assert up, f"espd did not come up (see {outdir}/*-{w}.log)"
    for i in range(1, k + 1):
        p = a.exec(
            ["ping", "-q", "-c", "1", "-W", "2", "-I", f"198.51.100.{i}", f"203.0.113.{i}"], check=False
        )
        assert p.returncode == 0, f"no ping through tunnel t{i}"
    servers = [
        net.procs.start(
            b.argv(["iperf3", "-s", "-1", "-B", f"203.0.113.{i}", "-p", str(5300 + i)]),
            f"{work}/srv-{w}-{i}.log",
        )
        for i in range(1, k + 1)
    ]
    time.sleep(1)

    def stats():
        p = run([espd, "stats", "--json", "--control", f"{work}/b.sock"], check=False)
        return jload(p.stdout) or None

    q0 = time.time()
    s0 = stats()
    t0, c0 = time.time(), ticks(pa.pid, pb.pid)
    jsons = [f"{outdir}/iperf-w{w}-t{i}.json" for i in range(1, k + 1)]
    clients = [
        net.procs.start(
            ["timeout", str(dur + 30), *a.argv(["iperf3", "-c", f"203.0.113.{i}", "-B", f"198.51.100.{i}"])]
            + ["-p", str(5300 + i), "-u", "-l", "64", "-b", rate, "-t", str(dur), "-J"],
            jsons[i - 1],
            err_path=os.devnull,
        )
        for i in range(1, k + 1)
    ]
    for p in clients:
        p.wait()
    t1, c1 = time.time(), ticks(pa.pid, pb.pid)
    s1 = stats()
    q1 = time.time()
    for p in servers:
        stop_process(p, 2)
    for p in (pa, pb):
        stop_process(p, 2)
    # the stats answers around the run (`espd stats` returns once every worker was counted)
    log(
        f"workers {w}: stats answered in {jq_round((t0 - q0) * 1000)} ms before the run and "
        f"{jq_round((q1 - t1) * 1000)} ms after it"
    )
    cpu = str(jq_round(100 * (c1 - c0) / os.sysconf("SC_CLK_TCK") / (t1 - t0)))
    opened = "-"
    if s0 and s1:
        d = s1["stats"]["decapsulated"] - s0["stats"]["decapsulated"]
        opened = jq_num(jq_round(d / (t1 - t0) / 1e3 * 100) / 100)
    texts = []
    for j in jsons:
        with open(j, errors="replace") as f:
            texts.append(f.read())
    r = row(w, texts, cpu, opened, s1)
    log(f"workers {w}: {' '.join(r[1:9])}")
    net.topo.destroy()
    net.topo = None
    time.sleep(0.2)
    return r


@named("name", {"bench-workers": "bench-workers"})
def test_bench_workers(net, name):
    dur = int(env("BENCH_WORKERS_SECONDS", "10", r"[1-9][0-9]*", "a positive number of seconds"))
    k = int(env("BENCH_WORKERS_TUNNELS", "4", r"[0-9]+", "1 to 64"))
    assert 1 <= k <= 64, "BENCH_WORKERS_TUNNELS: 1 to 64"
    workers = env("BENCH_WORKERS_LIST", "1 2").split()
    for w in workers:
        assert w.isdigit() and int(w) >= 1, f"BENCH_WORKERS_LIST: bad worker count {w}"
    rate = env("BENCH_WORKERS_RATE", "0")
    outdir = repo_path(env("BENCH_WORKERS_OUT", f"scripts/results/workers-{stamp()}"))
    report, failed = compare_workers(net, dur, k, workers, rate, outdir)
    print(report)
    assert not failed, "; ".join(failed)


def compare_workers(net, dur, k, workers, rate, outdir, work=None):
    """Every worker count measured (bench-workers.sh's main; bench-e2e runs it too): the report it
    printed (also in OUTDIR/table.txt) and the failures of the runs that could not be set up."""
    os.makedirs(outdir, exist_ok=True)
    espd, work = net.espd_binary, work or net.dir
    write_configs(work, k)
    p = run([espd, "check", "--config", f"{work}/a.json"], check=False)
    assert p.returncode == 0, "espd check rejects the generated config"
    offered = "unlimited" if rate == "0" else rate
    log(
        f"espd {net.session.espd_source}; {k} tunnels, one UDP flow of 64-byte datagrams each at {offered}; "
        f"{dur} s per run; {os.cpu_count()} CPUs"
    )
    rows, failed = [HEADER], []
    for w in workers:
        try:
            rows.append(measure(net, espd, w, k, dur, rate, work, outdir))
        except AssertionError as e:
            log(f"{e}")
            log(f"workers {w}: FAILED")
            failed.append(f"workers {w}: {e}")
            net.procs.stop_all()
        time.sleep(2)
    with open(f"{outdir}/results.tsv", "w") as f:
        f.write("".join("\t".join(r) + "\n" for r in rows))
    title = (
        f"== espd --workers N, UDP 64 B, {k} flows in {k} tunnels, offered {offered} each "
        f"({os.cpu_count()} CPUs, the iperf3 processes included)"
    )
    net.figures.extend(ratios(rows))
    report = "\n".join([title, columns(rows), *ratios(rows), f"results: {outdir}"])
    with open(f"{outdir}/table.txt", "w") as f:  # the report, with the results
        f.write(report + "\n")
    return report, failed


def ratios(rows):
    """Each worker count against the first: received datagrams per second, and datagrams opened."""

    def number(x):
        try:
            return float(x)
        except ValueError:
            return 0.0

    if len(rows) < 2:
        return []
    first, rx, op = rows[1][0], number(rows[1][1]), number(rows[1][4])
    out = []
    for r in rows[2:]:
        if rx <= 0:
            continue
        line = (
            f"workers {r[0]} / workers {first}: {number(r[1]) / rx:.2f}x received datagrams per second "
            "(target for 2: at least 1.6x)"
        )
        if op > 0 and number(r[4]) > 0:
            line += f"; {number(r[4]) / op:.2f}x datagrams opened by side b"
        out.append(line)
    return out
