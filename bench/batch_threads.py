"""One get_many call over more than one core, and get_many against pandas.Index.get_indexer.

Three measurements, each a same-run ratio of medians over interleaved rounds
(every round times each contender once, on the same queries):

    python -m bench.batch_threads scaling   [--keys 10_000_000] [--rounds 5]
    python -m bench.batch_threads breakeven [--keys 2_000_000] [--rounds 5]
    python -m bench.batch_threads pandas    [--sets lognormal,uniform,osm,ipv4] [--sizes 1_000_000,10_000_000]

scaling: get_many of --keys present keys (random order, repeats) with
threads=1 against threads=2 (and more with --threads), results checked equal;
--op put, insert or delete times that batch write instead.
breakeven: seconds per call for batch sizes from 1K to 1M keys, threads=1
against threads=2: where a second thread starts to pay (the default policy's
keys-per-thread in nfl/index.py).  pandas: get_many (default threads, and
threads=1) against pandas.Index.get_indexer on the same queries, both warm
(pandas builds its hash table at the first call, outside the timing); a set
smaller than a size asked for is measured at all its keys and says so.
Every table prints the load average before and after (the machine is shared).
--json writes the rows.  The real sets (osm, ipv4) are read from
workloads.datasets.data_dir(): set NFL_DATA_DIR when running from a
worktree that has no ../shared/data beside it.
"""
import json
import os
import statistics
import time

import numpy as np

import nfl
from . import COMMAND, workloads

datasets, usage = workloads("datasets"), workloads("usage")

#: Short names of the key sets -> workloads.datasets names (real sets: their whole file).
SETS = {"lognormal": "lognormal", "uniform": "uniform", "normal": "normal", "clustered": "clustered",
        "osm": "osm_tzb_s2cells_4M", "ipv4": "ipv4_geolite2_3M", "ts": "ts_git_commits_1M"}


def _csv(kind):
    def parse(text):
        return [kind(part) for part in text.split(",") if part]
    return parse


def load_keys(name, n, seed=0):
    """(keys, note): n keys of a set; a real set with fewer than n gives all of its keys, noted."""
    path = datasets.source(SETS[name])
    if path is None:
        return datasets.load(SETS[name], n, seed), ""
    keys = datasets.load(SETS[name], None, seed)
    if keys.size <= n:
        return keys, f"only {keys.size:,} keys in the file"
    return datasets.load(SETS[name], n, seed), ""


def present_queries(keys, n, seed=1):
    """n present keys, uniform over the keys (repeats), in random order."""
    return keys[np.random.default_rng(seed).integers(0, keys.size, n)]


def best_of(contenders, rounds, setup=None):
    """{name: [seconds per round]}: each round runs every contender once, in turn (interleaved).

    setup(), untimed, before each timed call: its result is passed to the contender."""
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            state = setup() if setup else None
            start = time.perf_counter()
            fn(state) if setup else fn()
            times[name].append(time.perf_counter() - start)
    return times


def _op(index, op, q, threads):
    """(call, setup) timing one batch op of q over threads: get, put (upserts of present keys),
    insert (of q, absent: into a fresh copy each time) or delete (of q, present: from a fresh copy)."""
    if op == "get":
        return (lambda: index.get_many(q, threads=threads)), None
    if op == "put":
        values = np.arange(q.size, dtype=np.int64)
        return (lambda: index.put_many(q, values, threads=threads)), None
    if op == "insert":
        values = np.arange(q.size, dtype=np.int64)
        return (lambda idx: idx.insert_many(q, values, threads=threads)), index.copy
    return (lambda idx: idx.delete_many(q, threads=threads)), index.copy


def _load():
    return "%.2f" % os.getloadavg()[0]


def scaling(args):
    keys = load_keys(args.set, args.keys)[0]
    if args.op == "insert":  # load every other key, insert the rest
        keys, q = keys[::2], np.random.default_rng(1).permutation(keys[1::2])
    else:
        q = present_queries(keys, args.keys) if args.op != "delete" else np.random.default_rng(1).permutation(keys)
    t0 = time.perf_counter()
    index = nfl.Index.bulk_load(keys, flow=args.flow)
    print(f"{args.set}: {keys.size:,} keys, flow={args.flow} ({'on' if index.flow else 'off'}), "
          f"built in {time.perf_counter() - t0:.1f} s; {args.op} of {q.size:,} keys")
    counts = sorted({1, *args.threads})
    if args.op == "get":
        want = index.get_many(q, threads=1)
        for t in counts[1:]:
            got = index.get_many(q, threads=t)
            if not (np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])):
                raise AssertionError(f"threads={t} gave other results than threads=1")
    load0 = _load()
    calls = {t: _op(index, args.op, q, t) for t in counts}
    setup = calls[1][1]
    times = best_of({t: call for t, (call, _) in calls.items()}, args.rounds, setup)
    base = statistics.median(times[1])
    rows = []
    for t in counts:
        med = statistics.median(times[t])
        rows.append({"set": args.set, "op": args.op, "keys": int(keys.size), "queries": int(q.size),
                     "threads": t, "median_s": med, "mops_per_s": q.size / med / 1e6, "speedup": base / med,
                     "rounds_s": times[t]})
        print(f"threads={t}: median {med:.3f} s ({q.size / med / 1e6:.2f} M ops/s), "
              f"{base / med:.2f}x threads=1; rounds " + " ".join(f"{x:.3f}" for x in times[t]))
    print(f"load average {load0} before, {_load()} after; cores {len(os.sched_getaffinity(0))}")
    return rows


def breakeven(args):
    keys = load_keys(args.set, args.keys)[0]
    index = nfl.Index.bulk_load(keys, flow=args.flow)
    rows = []
    print(f"{args.set}: {keys.size:,} keys; load average {_load()}")
    print(f"{'batch':>9} {'1 thread us':>12} {'2 threads us':>13} {'speedup':>8}")
    for size in args.batches:
        q = present_queries(keys, size, seed=size)
        reps = max(1, 2_000_000 // size)

        def run(t, q=q, reps=reps):
            for _ in range(reps):
                index.get_many(q, threads=t)
        times = best_of({1: lambda: run(1), 2: lambda: run(2)}, args.rounds)
        one, two = (statistics.median(times[t]) / reps for t in (1, 2))
        rows.append({"batch": size, "one_us": one * 1e6, "two_us": two * 1e6, "speedup": one / two})
        print(f"{size:>9,} {one * 1e6:>12.1f} {two * 1e6:>13.1f} {one / two:>7.2f}x")
    print(f"load average {_load()} after")
    return rows


def against_pandas(args):
    import pandas

    rows = []
    print(f"{'set':<10} {'keys':>11} {'nfl ms':>9} {'nfl 1t ms':>10} {'pandas ms':>10} "
          f"{'nfl/pandas':>11} {'1t/pandas':>10}  load")
    for name in args.sets:
        for n in args.sizes:
            keys, note = load_keys(name, n)
            index = nfl.Index.bulk_load(keys, flow=args.flow)
            pidx = pandas.Index(keys)
            q = present_queries(keys, keys.size)
            values, found = index.get_many(q)
            positions = pidx.get_indexer(q)  # warm: pandas builds its hash table here
            if not (found.all() and np.array_equal(keys[positions], q) and np.array_equal(values, positions)):
                raise AssertionError(f"{name}: nfl and pandas disagree")
            load0 = _load()
            times = best_of({"nfl": lambda: index.get_many(q), "nfl1": lambda: index.get_many(q, threads=1),
                             "pandas": lambda: pidx.get_indexer(q)}, args.rounds)
            med = {k: statistics.median(v) for k, v in times.items()}
            row = {"set": name, "keys": int(keys.size), "asked": n, "note": note,
                   "flow": index.flow is not None, "nfl_s": med["nfl"], "nfl_threads1_s": med["nfl1"],
                   "pandas_s": med["pandas"], "ratio": med["pandas"] / med["nfl"],
                   "ratio_threads1": med["pandas"] / med["nfl1"], "load": [load0, _load()], "rounds_s": times}
            rows.append(row)
            print(f"{name:<10} {keys.size:>11,} {med['nfl'] * 1e3:>9.1f} {med['nfl1'] * 1e3:>10.1f} "
                  f"{med['pandas'] * 1e3:>10.1f} {row['ratio']:>10.2f}x {row['ratio_threads1']:>9.2f}x  "
                  f"{load0}/{row['load'][1]} {note}")
            del index, pidx
    return rows


def parser():
    """The command line: every option with its help."""
    ap = usage.Parser(prog=f"{COMMAND}.batch_threads", description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["scaling", "breakeven", "pandas"], help="which measurement")
    ap.add_argument("--set", default="lognormal", choices=sorted(SETS), help="key set of scaling and breakeven")
    ap.add_argument("--keys", type=usage.positive, default=10_000_000, help="keys (and queries) of scaling")
    ap.add_argument("--threads", type=_csv(int), default=[2], help="thread counts scaling sets against 1")
    ap.add_argument("--op", default="get", choices=["get", "put", "insert", "delete"],
                    help="scaling's batch op: get, put (upserts of present keys), insert (the odd keys into "
                         "an index of the even ones), delete (every key)")
    ap.add_argument("--batches", type=_csv(int), default=[1024, 4096, 16384, 32768, 65536, 262144, 1048576],
                    help="batch sizes of breakeven")
    ap.add_argument("--sets", type=_csv(str), default=["lognormal", "uniform", "osm", "ipv4"],
                    help="key sets of pandas")
    ap.add_argument("--sizes", type=_csv(int), default=[1_000_000, 10_000_000], help="key counts of pandas")
    ap.add_argument("--rounds", type=usage.positive, default=5, help="interleaved rounds; medians are shown")
    ap.add_argument("--flow", default="auto", choices=["off", "auto", "on"], help="flow= of bulk_load")
    ap.add_argument("--json", help="also write the rows to this file")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    if args.what == "pandas" and any(s not in SETS for s in args.sets):
        parser().error(f"--sets: known sets are {', '.join(sorted(SETS))}")
    rows = {"scaling": scaling, "breakeven": breakeven, "pandas": against_pandas}[args.what](args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": f"{COMMAND}.batch_threads", "args": vars(args), "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
