"""Ordered operations from Python against SortedDict, same keys, same run.

    python -m bench.ordered [--n 1000000] [--scans 20000] [--repeat 5] [--flow off]

scan(start, 100) is compared with SortedDict.irange(start) + islice(100),
lower_bound(start) with next(SortedDict.irange(start)), a full items() walk
with SortedDict.items().  Medians of --repeat runs, nfl's and SortedDict's
alternating, so that a change in the machine's load hits both.
"""
import itertools
import statistics

import numpy as np
from sortedcontainers import SortedDict

import nfl

from . import COMMAND, workloads
from .scale import timed

datasets, usage = workloads("datasets"), workloads("usage")


def alternating(ours, theirs, repeat):
    """Median times of ours and theirs over repeat runs of each, taken in turns."""
    runs = [(timed(ours, 1), timed(theirs, 1)) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def parser():
    """The command line: every option with its help."""
    ap = usage.Parser(prog=f"{COMMAND}.ordered", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=usage.positive, default=1_000_000, help="lognormal keys in both indexes")
    ap.add_argument("--scans", type=usage.positive, default=20_000, help="scan(start, 100) calls per timing")
    ap.add_argument("--repeat", type=usage.positive, default=5, help="timings of each; the median is shown")
    ap.add_argument("--flow", default="off", choices=["off", "auto", "on"], help='flow= for bulk_load ("off", "auto", "on")')
    return ap


def main(argv=None):
    args = parser().parse_args(argv)

    keys = datasets.generate("lognormal", args.n, 1)
    rng = np.random.default_rng(1)
    idx = nfl.Index.bulk_load(keys, flow=args.flow)
    sd = SortedDict(zip(keys.tolist(), range(keys.size)))
    starts = keys[rng.integers(0, keys.size, args.scans)].tolist()

    def nfl_scans():
        for s in starts:
            idx.scan(s, 100)

    def sd_scans():
        for s in starts:
            list(itertools.islice(sd.irange(s), 100))

    def nfl_lower_bounds():
        for s in starts:
            idx.lower_bound(s)

    def sd_lower_bounds():
        for s in starts:
            next(sd.irange(s), None)

    def nfl_walk():
        for _ in idx.items():
            pass

    def sd_walk():
        for _ in sd.items():
            pass

    rows = [("scan(start, 100)", nfl_scans, sd_scans, args.scans),
            ("lower_bound(start)", nfl_lower_bounds, sd_lower_bounds, args.scans),
            ("items() walk", nfl_walk, sd_walk, 1)]
    print(f"{args.n:,} lognormal uint64 keys, flow={args.flow}; per-op Python path")
    for name, ours, theirs, count in rows:
        t_ours, t_theirs = alternating(ours, theirs, args.repeat)
        print(f"{name:18s} nfl {t_ours / count * 1e6:9.2f} us   SortedDict {t_theirs / count * 1e6:9.2f} us"
              f"   ratio {t_theirs / t_ours:.2f}x")


if __name__ == "__main__":
    main()
