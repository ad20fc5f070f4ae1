"""iperf3 servers and clients in namespaces, JSON results parsed."""

import json
import os

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
