"""get_many throughput with one thread against two threads on one shared index.

The native batch lookup releases the GIL and takes the index's lock in shared
(reader) mode, so two threads should run two batches at once.  This measures
it: rounds alternate between one thread and two threads doing the same number
of batches each, and the ratio of the median two-thread throughput to the
median one-thread throughput is printed (same run, same index, same batches).

    python -m bench.threads [--keys 2000000] [--batch 65536] [--rounds 9]

--profile splits one batch's time into the Python wrapper (key conversion,
output allocation) and the native call, to tell what would limit scaling.
"""
import os
import statistics
import threading
import time

import numpy as np

import nfl
from nfl._native import ffi, lib
from . import COMMAND, workloads

datasets, usage = workloads("datasets"), workloads("usage")


def lognormal_keys(n, seed=0):
    """n distinct uint64 keys, lognormal (sigma 2: workloads.datasets), in random order."""
    return np.random.default_rng(seed).permutation(datasets.generate("lognormal", n, seed))


def _run(index, batches, threads):
    """Seconds for `threads` threads each running get_many over all batches."""
    barrier = threading.Barrier(threads + 1)
    done = []

    def worker():
        barrier.wait()
        for q in batches:
            _, found = index.get_many(q)
            done.append(bool(found.all()))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if not all(done):
        raise AssertionError("a lookup of a present key missed")
    return elapsed


def measure(index, batches, rounds):
    """Median lookups/s with 1 and with 2 threads, alternating rounds."""
    lookups = sum(q.size for q in batches)
    one, two = [], []
    _run(index, batches, 1)  # warm caches and code paths
    for _ in range(rounds):
        one.append(lookups / _run(index, batches, 1))
        two.append(2 * lookups / _run(index, batches, 2))
    return statistics.median(one), statistics.median(two), one, two


def profile(index, batch):
    """Seconds per batch: the whole get_many, and the native call alone."""
    reps = 20
    start = time.perf_counter()
    for _ in range(reps):
        index.get_many(batch)
    whole = (time.perf_counter() - start) / reps
    keys = np.ascontiguousarray(batch, dtype=np.uint64)
    values = np.empty(keys.size, dtype=np.uint64)
    found = np.empty(keys.size, dtype=bool)
    k, v, f = (ffi.from_buffer("uint64_t[]", keys), ffi.from_buffer("uint64_t[]", values),
               ffi.from_buffer("uint8_t[]", found))
    start = time.perf_counter()
    for _ in range(reps):
        lib.nfl_get_many(index._ptr, k, keys.size, v, f)
    native = (time.perf_counter() - start) / reps
    return whole, native


def parser():
    """The command line: every option with its help."""
    ap = usage.Parser(prog=f"{COMMAND}.threads", description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=usage.positive, default=2_000_000, help="lognormal keys in the index")
    ap.add_argument("--batch", type=usage.positive, default=65_536, help="keys per get_many call")
    ap.add_argument("--batches", type=usage.positive, default=16, help="batches per thread per round")
    ap.add_argument("--rounds", type=usage.positive, default=9, help="timed rounds; the median is shown")
    ap.add_argument("--flow", default="off", choices=["off", "auto", "on"], help='flow= of bulk_load ("off", "auto", "on")')
    ap.add_argument("--profile", action="store_true", help="also time one batch: the whole call vs the native call alone")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)

    keys = lognormal_keys(args.keys)
    t0 = time.perf_counter()
    index = nfl.Index.bulk_load(keys, flow=args.flow)
    print(f"index: {args.keys:,} lognormal uint64 keys, flow={args.flow}, "
          f"built in {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(1)
    batches = [keys[rng.integers(0, keys.size, args.batch)] for _ in range(args.batches)]
    if args.profile:
        whole, native = profile(index, batches[0])
        print(f"one batch of {args.batch:,}: get_many {whole * 1e3:.2f} ms, native call "
              f"{native * 1e3:.2f} ms, wrapper (GIL held) {(whole - native) * 1e3:.2f} ms "
              f"= {100 * (whole - native) / whole:.1f} %")
    one, two, ones, twos = measure(index, batches, args.rounds)
    print("1 thread  Mlookups/s: " + " ".join(f"{x / 1e6:.2f}" for x in ones))
    print("2 threads Mlookups/s: " + " ".join(f"{x / 1e6:.2f}" for x in twos))
    print(f"median: 1 thread {one / 1e6:.2f} M/s, 2 threads {two / 1e6:.2f} M/s, "
          f"ratio {two / one:.2f}x (load average {os.getloadavg()[0]:.2f})")
    return two / one


if __name__ == "__main__":
    main()
