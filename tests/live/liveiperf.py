"""iperf3 servers and clients in namespaces, JSON results parsed."""

import json
import os
import subprocess

from liveproc import Procs, run, wait_for


class IperfServer:
    def __init__(self, ns, bind, procs: Procs, workdir, port=5201):
        self.bind, self.port = bind, port
        log = os.path.join(workdir, f"iperf3-server-{port}.log")
        self.proc = procs.start(ns.argv(["iperf3", "-s", "-B", bind, "-p", str(port)]), log)
        wait_for(
            lambda: f":{port} " in run(ns.argv(["ss", "-Hltn"]), check=False).stdout,
            10,
            what="iperf3 -s listening",
        )

    def stop(self):
        Procs.stop(self.proc)


def iperf(ns, server, src, seconds=3, reverse=False, udp_rate=None, length=1200, port=5201):
    """One iperf3 run; returns the parsed JSON (raises with iperf3's error otherwise)."""
    argv = ["iperf3", "-c", server, "-B", src, "-p", str(port), "-t", str(seconds), "-J"]
    if reverse:
        argv.append("-R")
    if udp_rate:
        argv += ["-u", "-b", udp_rate, "-l", str(length)]
    p = ns.exec(argv, check=False, timeout=seconds + 30)
    try:
        result = json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"iperf3 gave no JSON: {p.stdout[-500:]} {p.stderr[-500:]}") from None
    if "error" in result:
        raise AssertionError(f"iperf3: {result['error']}")
    return result


def tcp_mbps(result):
    return result["end"]["sum_received"]["bits_per_second"] / 1e6


def udp_loss(result):
    """(lost, sent) datagrams as the receiver counted them."""
    s = result["end"]["sum"]
    return s["lost_packets"], s["packets"]


class IperfRun:
    """One iperf3 run between namespaces (iperf_once): ok, summary (what it measured or why it
    failed), result (the parsed JSON, or None)."""

    def __init__(self, ok, summary, result):
        self.ok, self.summary, self.result = ok, summary, result

    def udp_lost_percent(self):
        """The receiver's lost percentage, floored (100 when there is no result)."""
        try:
            return int(self.result["end"]["sum"]["lost_percent"])
        except (TypeError, KeyError):
            return 100


def iperf_once(server_ns, client_ns, addr, seconds, procs: Procs, logdir, name, args=(), port=5201):
    """`iperf3 -s -1` in server_ns and `iperf3 -c addr -t seconds --connect-timeout 3000 -J ARGS` in
    client_ns (bounded: seconds + 15). ok when the run completed and moved data."""
    srv = procs.start(
        server_ns.argv(["iperf3", "-s", "-1", "-p", str(port)]),
        os.path.join(logdir, f"{name}-server.out"),
        err_path=os.path.join(logdir, f"{name}-server.err"),
    )
    try:
        wait_for(lambda: server_ns.tcp_listening(port), 5, what="iperf3 -s listening")
    except TimeoutError:
        Procs.stop(srv, timeout=1)
        return IperfRun(False, "iperf3 server did not start", None)
    argv = ["iperf3", "-c", addr, "-p", str(port), "-t", str(seconds), "--connect-timeout", "3000", "-J"]
    try:
        p = run(client_ns.argv(argv + [str(a) for a in args]), timeout=seconds + 15, check=False)
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (
            (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or "",
            124,
        )
    Procs.stop(srv, timeout=2)
    with open(os.path.join(logdir, f"{name}.json"), "w") as f:
        f.write(out)
    try:
        result = json.loads(out)
    except ValueError:
        result = None
    if rc != 0 or not (result or {}).get("end", {}).get("sum_sent"):
        err = (result or {}).get("error", "")
        if rc == 124:
            err = "timed out" + (f": {err}" if err else "")
        return IperfRun(False, f"iperf3 failed (rc={rc}{': ' + err if err else ''})", result)
    end = result["end"]
    if result["start"]["test_start"]["protocol"] == "UDP":
        s = end["sum"]
        summary = f"{int(s['bits_per_second'] / 1e6)} Mbit/s, {s['lost_packets']}/{s['packets']} lost"
        moved = s["packets"] - s["lost_packets"] > 0
    else:
        summary = f"{int(end['sum_received']['bits_per_second'] / 1e6)} Mbit/s received"
        moved = end["sum_received"]["bytes"] > 0
    if not moved:
        return IperfRun(False, f"iperf3 moved no data ({summary})", result)
    return IperfRun(True, summary, result)
