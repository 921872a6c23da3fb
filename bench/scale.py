"""Scale check of the native core: bulk load, one-call get_many, memory, leaks.

    python -m bench.scale [--n 10000000] [--cycles 50] [--cycle-n 1000000]

Figures are medians of --repeat runs; get_many is quoted beside
numpy.searchsorted over the same sorted keys and queries, measured in the same
process (the machines are shared: only the ratio travels).
"""
import gc
import resource
import statistics
import time

import numpy as np

import nfl
from . import COMMAND, workloads

datasets, usage = workloads("datasets"), workloads("usage")


def rss_mb() -> float:
    """Current resident set size (not the peak), in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def lognormal_keys(n, seed=1):
    """n distinct lognormal uint64 keys (workloads.datasets), in random order."""
    return np.random.default_rng(seed).permutation(datasets.generate("lognormal", n, seed))


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
        del result
    return statistics.median(times)


def parser():
    """The command line: every option with its help."""
    ap = usage.Parser(prog=f"{COMMAND}.scale", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=usage.positive, default=10_000_000, help="lognormal keys bulk-loaded")
    ap.add_argument("--repeat", type=usage.positive, default=3, help="timings of each; the median is shown")
    ap.add_argument("--cycles", type=usage.positive, default=50, help="insert/delete cycles of the churn test")
    ap.add_argument("--cycle-n", type=usage.positive, default=1_000_000, help="keys inserted and deleted per cycle")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)

    keys = lognormal_keys(args.n)
    sorted_keys = np.sort(keys)
    nfl.Index.bulk_load(keys[:1000], flow="off")  # compile numba kernels once
    print(f"keys: {args.n:,} lognormal uint64 (mean 0, sigma 2, x1e9), flow off")
    for name, arr in (("shuffled", keys), ("sorted", sorted_keys)):
        t = timed(lambda: nfl.Index.bulk_load(arr, flow="off"), args.repeat)
        print(f"bulk_load {name:8s}: {t:6.2f} s  ({args.n / t / 1e6:.1f} M keys/s)")

    before = rss_mb()
    idx = nfl.Index.bulk_load(keys, flow="off")
    after = rss_mb()
    st = idx.stats()
    print(f"memory: {st['memory_bytes'] / args.n:.1f} B/key tracked, {(after - before) * 2**20 / args.n:.1f} B/key RSS; "
          f"depth avg {st['avg_depth']:.2f} max {st['max_depth']}, {st['buckets']:,} buckets, bucket size {st['bucket_size']}")

    queries = keys[np.random.default_rng(2).integers(0, args.n, args.n)]
    t_nfl = timed(lambda: idx.get_many(queries), args.repeat)
    t_np = timed(lambda: np.searchsorted(sorted_keys, queries), args.repeat)
    print(f"get_many of {args.n:,} keys in one call: {t_nfl:.2f} s ({args.n / t_nfl / 1e6:.1f} Mops/s); "
          f"numpy.searchsorted {t_np:.2f} s; ratio {t_np / t_nfl:.1f}x")
    del idx

    small = lognormal_keys(args.cycle_n, seed=3)
    samples = []
    for cycle in range(1, args.cycles + 1):
        idx = nfl.Index.bulk_load(small, flow="off")
        idx.put_many(small[:1000] + np.uint64(1), np.arange(1000))
        idx.delete_many(small[:500])
        del idx
        gc.collect()
        if cycle % 10 == 0 or cycle == 5:
            samples.append((cycle, rss_mb()))
    first = samples[0][1]
    print("RSS over build/destroy cycles of a {:,}-key index: ".format(args.cycle_n)
          + ", ".join(f"#{c}: {r:.0f} MiB" for c, r in samples)
          + f"  (growth after cycle 5: {samples[-1][1] - first:+.1f} MiB)")


if __name__ == "__main__":
    main()
