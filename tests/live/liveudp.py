"""A UDP echo service and UDP flows in namespaces: small Python programs that log JSON lines."""

import json
import os
import sys

from liveproc import Procs, wait_for

# Every datagram is answered with "echo:" + its payload and logged as {"from", "port", "text"}.
ECHO = r"""
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
print(json.dumps({"event": "listening"}), flush=True)
while True:
    data, (addr, port) = s.recvfrom(65535)
    print(json.dumps({"from": addr, "port": port, "text": data.decode(errors="replace")}), flush=True)
    s.sendto(b"echo:" + data, (addr, port))
"""

# COUNT datagrams "TAG:i" from BIND:SPORT to DST:DPORT, one every INTERVAL s; after LINGER more
# seconds of listening, one line {"sent", "replies": {"addr:port": [texts]}}.
FLOW = r"""
import json, socket, sys, time
bind, sport, dst, dport, tag, count, interval, linger = sys.argv[1:9]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((bind, int(sport)))
s.setblocking(False)
replies = {}
def drain():
    while True:
        try:
            data, (a, p) = s.recvfrom(65535)
        except BlockingIOError:
            return
        replies.setdefault(f"{a}:{p}", []).append(data.decode(errors="replace"))
sent = 0
for i in range(int(count)):
    try:
        s.sendto(f"{tag}:{i}".encode(), (dst, int(dport)))
        sent += 1
    except OSError:
        pass
    time.sleep(float(interval))
    drain()
end = time.monotonic() + float(linger)
while time.monotonic() < end:
    time.sleep(0.05)
    drain()
print(json.dumps({"sent": sent, "replies": replies}), flush=True)
"""


def start_python(ns, procs: Procs, code, args, log_path):
    """A Python program (source text) in the namespace, niced, stdout and stderr to log_path."""
    argv = ["nice", "-n", "10", sys.executable, "-c", code, *(str(a) for a in args)]
    return procs.start(ns.argv(argv), log_path)


def _read(path):
    with open(path, errors="replace") as f:
        return f.read()


class UdpEcho:
    """The echo service on bind:port; events() lists the datagrams it answered."""

    def __init__(self, ns, bind, port, procs: Procs, workdir):
        self.log_path = os.path.join(workdir, f"udp-echo-{port}.log")
        self.proc = start_python(ns, procs, ECHO, [bind, port], self.log_path)
        wait_for(lambda: '"listening"' in _read(self.log_path), 10, what=f"udp echo on {bind}:{port}")

    def events(self):
        """{"from", "port", "text"} of every datagram so far."""
        lines = _read(self.log_path).splitlines()
        return [ev for ev in map(json.loads, lines) if "from" in ev]

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        Procs.stop(self.proc)


class UdpFlow:
    """One flow, started at once (several run side by side); result() waits for its summary."""

    def __init__(
        self, ns, bind, sport, dst, dport, tag, procs: Procs, workdir, count=30, interval=0.05, linger=2
    ):
        self.log_path = os.path.join(workdir, f"udp-flow-{tag}.log")
        args = [bind, sport, dst, dport, tag, count, interval, linger]
        self.proc = start_python(ns, procs, FLOW, args, self.log_path)

    def result(self, timeout=30):
        """{"sent": n, "replies": {"addr:port": [texts]}}."""
        self.proc.wait(timeout)
        return json.loads(_read(self.log_path).strip().splitlines()[-1])
