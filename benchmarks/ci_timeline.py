"""Where the test suite's minutes go: each worker's busy and idle time, and the scopes (modules, notebooks) that cost most.

    GAN_LIB_TIMELINE=/tmp/timeline.txt pytest --nbval        # conftest.py writes a line per test
    python benchmarks/ci_timeline.py /tmp/timeline.txt [--top 25]

Printed: the wall time from the first test's start to the last one's end; per worker its busy seconds and how
long it sat idle at the end while another still ran (the tail that a better order would save); then the
scopes by total seconds, with the worker that ran each and when it started.
"""

import argparse
from collections import defaultdict


def read(path):
    """[(worker, start, end, nodeid)]."""
    rows = []
    with open(path) as f:
        for line in f:
            worker, start, end, nodeid = line.rstrip("\n").split(" ", 3)
            rows.append((worker, float(start), float(end), nodeid))
    if not rows:
        raise SystemExit(f"{path} holds no tests: run pytest with GAN_LIB_TIMELINE={path}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("timeline")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    rows = read(args.timeline)
    t0, t1 = min(r[1] for r in rows), max(r[2] for r in rows)
    print(f"{len(rows)} tests, {t1 - t0:.0f} s from the first start to the last end")
    for worker in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == worker]
        busy = sum(r[2] - r[1] for r in mine)
        print(f"  {worker}: busy {busy:.0f} s, {len(mine)} tests, idle at the end {t1 - max(r[2] for r in mine):.0f} s")
    scopes = defaultdict(lambda: [0.0, None, float("inf")])  # seconds, worker, first start
    for worker, start, end, nodeid in rows:
        scope = scopes[nodeid.split("::")[0]]
        scope[0] += end - start
        scope[1] = worker
        scope[2] = min(scope[2], start)
    print(f"the {args.top} costliest scopes (seconds, worker, started at):")
    for name, (seconds, worker, first) in sorted(scopes.items(), key=lambda kv: -kv[1][0])[:args.top]:
        print(f"  {seconds:7.1f}  {worker}  +{first - t0:5.0f} s  {name}")


if __name__ == "__main__":
    main()
