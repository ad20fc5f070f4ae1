"""Processes started by the live tests: started, tracked and stopped by PID; bounded waits."""

import contextlib
import os
import signal
import subprocess
import time


def run(argv, timeout=30, check=True, env=None, input=None):
    """Runs a command to completion (bounded); raises with its output when check and it fails."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, input=input)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p


def wait_for(pred, timeout, interval=0.1, what="a condition"):
    """Polls pred() until it returns something truthy (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def time_limit(seconds):
    """Raises TimeoutError in the main thread if the block runs longer than seconds (SIGALRM)."""

    def too_long(signum, frame):
        raise TimeoutError(f"ran for {seconds} s")

    old = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class Procs:
    """Every long-running process of a test session; each is stopped by its own PID."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log_path, env=None, err_path=None):
        """Starts argv in the background; stdout to log_path, stderr too or to err_path."""
        out = open(log_path, "ab")
        err = open(err_path, "ab") if err_path else None
        p = subprocess.Popen(
            argv,
            stdout=out,
            stderr=err or subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        out.close()
        if err:
            err.close()
        self.procs.append(p)
        return p

    def alive(self):
        """The processes still running."""
        return [p for p in self.procs if p.poll() is None]

    @staticmethod
    def stop(p, sig=signal.SIGTERM, timeout=8.0):
        """Signals one process and waits for it; SIGKILL if it outlives timeout."""
        if p.poll() is not None:
            return p.returncode
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return p.wait(timeout=5)

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)
        self.procs.clear()


def wait_exit(p, timeout):
    """Waits up to timeout seconds for p to exit; its exit code, or None if it still runs."""
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def tail(path, lines=2):
    """The last lines of a log file, joined by " | " ("" if there is none)."""
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().rstrip("\n").splitlines()[-lines:])
    except OSError:
        return ""


class Daemon:
    """A long-running process of a test (charon, espd) in `proc`, stopped by its own PID."""

    proc = None

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None:
            Procs.stop(self.proc, sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None
