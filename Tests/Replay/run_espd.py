#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs espd against every replay fixture and checks the results.

    run_espd.py ESPD [--work DIR] [--only CASE ...] [--no-tshark] [--keep-going]

ESPD is the espd executable (e.g. .build/debug/espd), or a command line in quotes
("python3 Tests/Replay/refmodel.py" runs the reference model instead, to test this script).
For every case of make_fixtures.py, in WORK (default: a temporary directory, kept on failure):

    espd replay --config CASE/config.json --in CASE/in.pcap --out OUT/out.pcap --json > OUT/summary.json
        exit status must be expected.json's exit_code (0; 1 for truncated-file)
    check.py CASE OUT/out.pcap OUT/summary.json
and, for cases with encapsulated output:
    espd keys --config CASE/config.json --format wireshark > OUT/keys
    wireshark_keys.py CASE/config.json --check OUT/keys
    tshark_decrypt.py CASE/config.json OUT/out.pcap OUT/keys --casedir CASE [--wildcard-addresses]

Exit status 0 if every case passed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("espd")
    ap.add_argument("--work")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-tshark", action="store_true")
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    espd = shlex.split(a.espd)
    work = a.work or tempfile.mkdtemp(prefix="espd-replay-")
    fx = os.path.join(work, "fixtures")
    shutil.rmtree(fx, ignore_errors=True)
    cmd = [PY, os.path.join(HERE, "make_fixtures.py"), fx] + (["--only", *a.only] if a.only else [])
    if subprocess.run(cmd, capture_output=True).returncode:
        print("make_fixtures.py failed", file=sys.stderr)
        return 1
    tshark = not a.no_tshark and shutil.which("tshark")
    failed, passed = [], 0
    for case in sorted(glob.glob(os.path.join(fx, "*/"))):
        name = os.path.basename(case.rstrip("/"))
        out = os.path.join(work, "out", name)
        os.makedirs(out, exist_ok=True)
        exp = json.load(open(os.path.join(case, "expected.json")))
        inp = os.path.join(case, exp["input"]["file"])
        ok = True
        argv = espd + ["replay", "--config", os.path.join(case, "config.json"), "--in", inp,
                       "--out", os.path.join(out, "out.pcap"), "--json"]
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            print(f"FAIL {name}: espd replay timed out after {a.timeout}s")
            failed.append(name)
            continue
        with open(os.path.join(out, "summary.json"), "w") as f:
            f.write(p.stdout)
        with open(os.path.join(out, "stderr"), "w") as f:
            f.write(p.stderr)
        want_rc = exp.get("exit_code", 0)
        if p.returncode != want_rc:
            print(f"FAIL {name}: espd replay exited {p.returncode}, expected {want_rc}\n"
                  f"  $ {shlex.join(argv)}\n  stderr: {p.stderr.strip()[:2000]}")
            ok = False
        elif want_rc and not p.stderr.strip():
            print(f"FAIL {name}: exit {want_rc} but no line on stderr says where the file is damaged")
            ok = False
        if not os.path.exists(os.path.join(out, "out.pcap")):
            print(f"FAIL {name}: no {out}/out.pcap written")
            failed.append(name)
            continue
        c = subprocess.run([PY, os.path.join(HERE, "check.py"), case, os.path.join(out, "out.pcap"),
                            os.path.join(out, "summary.json")], capture_output=True, text=True)
        print(c.stdout, end="")
        ok &= c.returncode == 0
        if any(o["kind"] == "encap" for o in exp["outputs"]):
            k = subprocess.run(espd + ["keys", "--config", os.path.join(case, "config.json"),
                                       "--format", "wireshark"], capture_output=True, text=True)
            keys = os.path.join(out, "keys")
            with open(keys, "w") as f:
                f.write(k.stdout)
            if k.returncode:
                print(f"FAIL {name}: espd keys exited {k.returncode}: {k.stderr.strip()}")
                ok = False
            else:
                c = subprocess.run([PY, os.path.join(HERE, "wireshark_keys.py"),
                                    os.path.join(case, "config.json"), "--check", keys],
                                   capture_output=True, text=True)
                if c.returncode:
                    print(f"  {name}: " + c.stdout.strip().replace("\n", f"\n  {name}: "))
                    ok = False
                if tshark:
                    extra = ["--wildcard-addresses"] if name == "nat-rebinding" else []
                    c = subprocess.run([PY, os.path.join(HERE, "tshark_decrypt.py"),
                                        os.path.join(case, "config.json"), os.path.join(out, "out.pcap"),
                                        keys, "--casedir", case, *extra], capture_output=True, text=True)
                    if c.returncode:
                        print(f"  {name}: tshark: " + c.stdout.strip().replace("\n", f"\n  {name}: "))
                        ok = False
        if ok:
            passed += 1
        else:
            failed.append(name)
    print(f"\n{passed} passed, {len(failed)} failed" + (f": {' '.join(failed)}" if failed else "")
          + f"  (work directory: {work})")
    if not failed and not a.work:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
