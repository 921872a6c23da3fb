"""The three inputs that used to make the AFLI tree degenerate, measured (issue 17).

    python -m bench.cliffs outside [--n-new 2000000]   # inserts past the loaded range
    python -m bench.cliffs wide [--n 300000]           # wide-magnitude floats grown by inserts
    python -m bench.cliffs runs [--n 10000000]         # dense runs of ids over the uint64 range
    python -m bench.cliffs memory [--n 10000000] [--datasets lognormal,dense-runs]  # memory_usage() against RSS growth

outside: 500K lognormal(0, 2) x 1e12 uint64 keys bulk-loaded with flow="auto"
and with flow="off", then --n-new random keys above the maximum and as many
below the minimum (workloads.hard.outside), put_many in batches of 20K,
each batch applied to both indexes in turn.  Prints the insert throughput of
the first and last 200K keys of each stream and get_many over the new keys,
as ratios against the flow-off index.

wide: --n keys +-10^u, u uniform in [-300, 300], put_many in 30 batches into
an empty Index and a durable index (nfl.open, sync="none", then checkpoint
and reopen), against a flow="on" bulk load of the same keys.

runs: --n keys in runs of consecutive ids (workloads.hard.dense_runs, mean
run 256), half bulk-loaded (flow="auto"), half inserted in 250 batches;
get_many over 2M keys against numpy.searchsorted over the same sorted keys.

memory: --n lognormal and dense-runs keys, each bulk-loaded with flow="off"
in this process; memory_usage() against the growth of the resident set
(/proc/self/statm) over the load, per key.

Figures are medians of --repeat timings, alternated between the peers in one
process: the machines are shared, only the ratios travel.
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import nfl

from . import workloads
from .timing import median_s

datasets, hard = workloads("datasets"), workloads("hard")

BATCH = 20_000
WINDOW = 200_000


def shape(index) -> str:
    s = index.stats()
    return (f"depth avg {s['avg_depth']:.2f} max {s['max_depth']}, {s['memory_bytes'] / max(len(index), 1):.1f} B/key, "
            f"{s['model_nodes']:,} model nodes, {s['dense_keys']:,} keys in dense nodes "
            f"(largest {s['max_dense_node']:,}), depths {s['depth_histogram']}")


def get_many_time(indexes: dict, queries, repeat) -> dict:
    """Median get_many time of each index over queries, the indexes alternated in each round."""
    times = {name: [] for name in indexes}
    for _ in range(repeat):
        for name, index in indexes.items():
            t = time.perf_counter()
            _, found = index.get_many(queries)
            times[name].append(time.perf_counter() - t)
            if not found.all():
                raise AssertionError(f"{name}: get_many missed keys it holds")
    return {name: statistics.median(t) for name, t in times.items()}


def outside(args):
    rng = np.random.default_rng(args.seed)
    base = np.unique((rng.lognormal(0.0, 2.0, 500_000) * 1e12).astype(np.uint64))
    indexes = {flow: nfl.Index.bulk_load(base, flow=flow) for flow in ("auto", "off")}
    print(f"loaded {base.size:,} keys; flow kept by auto: {indexes['auto'].flow is not None}")
    k = WINDOW // BATCH
    for side in ("above", "below"):
        new = hard.outside(base, args.n_new, side, rng)
        rates = {flow: [] for flow in indexes}
        for batch in np.array_split(new, max(1, new.size // BATCH)):
            values = np.arange(batch.size)
            for flow, index in indexes.items():
                t = time.perf_counter()
                index.put_many(batch, values)
                rates[flow].append(batch.size / (time.perf_counter() - t))
        window = {flow: (k / sum(1 / r for r in rs[:k]), k / sum(1 / r for r in rs[-k:])) for flow, rs in rates.items()}
        got = get_many_time(indexes, rng.permutation(new)[:1_000_000], args.repeat)
        (a_first, a_last), (o_first, o_last) = window["auto"], window["off"]
        print(f"{side}: inserts/s auto first {a_first / 1e6:.2f}M last {a_last / 1e6:.2f}M, "
              f"off first {o_first / 1e6:.2f}M last {o_last / 1e6:.2f}M; "
              f"auto last/first {a_last / a_first:.2f}x, auto last/off last {a_last / o_last:.2f}x; "
              f"get_many over the new keys auto/off {got['off'] / got['auto']:.2f}x")
    for flow, index in indexes.items():
        print(f"flow={flow}: {shape(index)}")


def wide(args):
    rng = np.random.default_rng(args.seed)
    keys = np.unique(hard.wide_floats(rng, args.n))
    batches = np.array_split(rng.permutation(keys), 30)
    grown = nfl.Index(key_dtype="float64")
    folder = tempfile.mkdtemp(prefix="nfl-cliffs-")
    durable = nfl.open(os.path.join(folder, "d"), key_dtype="float64", sync="none")
    for batch in batches:
        grown.put_many(batch, np.arange(batch.size))
        durable.put_many(batch, np.arange(batch.size))
    durable.checkpoint()
    durable.close()
    indexes = {"bulk flow=on": nfl.Index.bulk_load(keys, flow="on"), "empty + inserts": grown,
               "durable + inserts": nfl.open(os.path.join(folder, "d2"), key_dtype="float64", sync="none"),
               "durable reopened": nfl.open(os.path.join(folder, "d"))}
    for batch in batches:
        indexes["durable + inserts"].put_many(batch, np.arange(batch.size))
    got = get_many_time(indexes, rng.choice(keys, 1_000_000), args.repeat)
    for name, index in indexes.items():
        print(f"{name}: get_many {got[name] / got['bulk flow=on']:.2f}x the flow bulk load's time; {shape(index)}")


def runs(args):
    keys = datasets.load("dense-runs", args.n, args.seed)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(keys.size)
    half = keys.size // 2
    index = nfl.Index.bulk_load(np.sort(keys[order[:half]]), flow="auto")
    print(f"loaded {half:,}: flow kept {index.flow is not None}; {shape(index)}")
    for batch in np.array_split(keys[order[half:]], 250):
        index.put_many(batch, np.arange(batch.size))
    print(f"inserted {keys.size - half:,}: {shape(index)}")
    queries = rng.choice(keys, 2_000_000)
    nfl_times, np_times = [], []
    for _ in range(args.repeat):  # alternated: the machine is shared
        nfl_times.append(median_s(lambda: index.get_many(queries), 1))
        np_times.append(median_s(lambda: np.searchsorted(keys, queries), 1))
    t_nfl, t_np = statistics.median(nfl_times), statistics.median(np_times)
    print(f"get_many {t_nfl / queries.size * 1e9:.0f} ns/key, numpy.searchsorted {t_np / queries.size * 1e9:.0f} ns/key: "
          f"{t_np / t_nfl:.1f}x")


def resident_bytes() -> int:
    """This process's resident set (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory(args):
    nfl.Index.bulk_load(np.arange(1000, dtype=np.uint64), flow="off")  # first-use allocations, not counted
    for name in args.datasets.split(","):
        keys = datasets.load(name, args.n, args.seed)
        values = np.arange(keys.size, dtype=np.int64)
        before = resident_bytes()
        index = nfl.Index.bulk_load(keys, values, flow="off")
        grown = resident_bytes() - before
        counted = index.memory_usage()
        print(f"{name}: memory_usage {counted / keys.size:.1f} B/key, RSS growth {grown / keys.size:.1f} B/key: "
              f"{counted / grown:.2f}x")
        del index


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.cliffs", description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=("outside", "wide", "runs", "memory"))
    ap.add_argument("--n", type=int, default=None, help="keys (wide: 300K, runs: 10M)")
    ap.add_argument("--n-new", type=int, default=2_000_000, help="outside: keys inserted on each side")
    ap.add_argument("--datasets", default="lognormal,dense-runs", help="memory: comma-separated key sets")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.n is None:
        args.n = 300_000 if args.case == "wide" else 10_000_000
    {"outside": outside, "wide": wide, "runs": runs, "memory": memory}[args.case](args)


if __name__ == "__main__":
    main()
