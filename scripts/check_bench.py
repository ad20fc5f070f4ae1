# SPDX-License-Identifier: Apache-2.0
"""Checks `bench` JSON lines against the thresholds file; prints one line per check."""
import json
import sys


def main() -> int:
    thresholds = json.load(open(sys.argv[1]))
    rows = [json.loads(line) for line in open(sys.argv[2]) if line.startswith("{") and '"case"' in line]
    failures = 0
    checks = 0
    for t in thresholds["checks"]:
        match = [r for r in rows if all(r.get(k) == v for k, v in t["where"].items())]
        if not match:
            print(f"MISS  {t['where']}: no such bench line")
            failures += 1
            continue
        for r in match:
            for field, bound in t.get("min", {}).items():
                checks += 1
                ok = r[field] >= bound
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'}  {t['where']} {field}={r[field]} (min {bound})")
            for field, bound in t.get("max", {}).items():
                checks += 1
                ok = r[field] <= bound
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'}  {t['where']} {field}={r[field]} (max {bound})")
    print(f"bench: {checks - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
