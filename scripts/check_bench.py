# SPDX-License-Identifier: Apache-2.0
"""Checks `bench` JSON lines against the thresholds file; prints one line per check.

Usage: check_bench.py THRESHOLDS RUN [RUN ...]. With several runs of the same benchmarks, each check
is judged on its best run: on a shared machine one noisy run should not fail a check that another
run of the same code met, while a real regression misses in every run.
"""
import json
import sys


def load(path):
    return [json.loads(line) for line in open(path) if line.startswith("{") and '"case"' in line]


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: check_bench.py THRESHOLDS RUN [RUN ...]", file=sys.stderr)
        return 2
    thresholds = json.load(open(sys.argv[1]))
    runs = [load(p) for p in sys.argv[2:]]
    failures = 0
    checks = 0
    for t in thresholds["checks"]:
        per_run = [[r for r in rows if all(r.get(k) == v for k, v in t["where"].items())] for rows in runs]
        count = max(len(m) for m in per_run)
        if count == 0:
            print(f"MISS  {t['where']}: no such bench line")
            failures += 1
            continue
        bounds = [("min", f, b) for f, b in t.get("min", {}).items()]
        bounds += [("max", f, b) for f, b in t.get("max", {}).items()]
        for i in range(count):
            for kind, field, bound in bounds:
                values = [m[i][field] for m in per_run if i < len(m) and field in m[i]]
                checks += 1
                if not values:
                    print(f"MISS  {t['where']} {field}: not in any run")
                    failures += 1
                    continue
                best = max(values) if kind == "min" else min(values)
                ok = best >= bound if kind == "min" else best <= bound
                failures += not ok
                runs_note = f" (best of {len(values)}: {', '.join(map(str, values))})" if len(values) > 1 else ""
                print(f"{'ok  ' if ok else 'FAIL'}  {t['where']} {field}={best} ({kind} {bound}){runs_note}")
    print(f"bench: {checks - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
