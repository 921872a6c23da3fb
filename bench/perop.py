"""The per-op Python path: one Python call per op, what a casual user gets."""
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .ops import INSERT, READ, RMW, SCAN


@dataclass
class Handlers:
    """An index's per-op Python calls.

    get(k) -> value or None; put(k, v) upserts; delete(k); scan(k, n) -> up to
    n entries from the first key >= k."""

    get: Callable
    put: Callable
    delete: Callable
    scan: Callable


def columns(stream):
    """The stream's op, key, value and scan-length columns as Python lists."""
    return stream.op.tolist(), stream.key.tolist(), stream.value.tolist(), stream.scan_len.tolist()


def run(h, cols, start, end, chunk, times, got):
    """Runs ops [start, end), timing each run of `chunk` ops with perf_counter_ns.

    times[i // chunk] gets the ns of the run starting at op i (start is a
    multiple of chunk); got[i] the result of each read or read-modify-write."""
    ops, keys, values, lens = cols
    get, put, delete, scan = h.get, h.put, h.delete, h.scan
    now = time.perf_counter_ns
    for b in range(start, end, chunk):
        todo = range(b, min(b + chunk, end))
        t0 = now()
        for i in todo:
            c = ops[i]
            if c == READ:
                got[i] = get(keys[i])
            elif c <= INSERT:
                put(keys[i], values[i])
            elif c == SCAN:
                scan(keys[i], lens[i])
            elif c == RMW:
                got[i] = get(keys[i])
                put(keys[i], values[i])
            else:
                delete(keys[i])
        times[b // chunk] = now() - t0


def timer_overhead_ns(samples=10001):
    """Median gap between two back-to-back perf_counter_ns calls."""
    now = time.perf_counter_ns
    gaps = np.empty(samples)
    for i in range(samples):
        t0 = now()
        gaps[i] = now() - t0
    return float(np.median(gaps))


# ---- python -m bench.perop: single-key operations side by side --------------------

PEERS = ("nfl", "sorteddict", "btrees", "dict")
COLUMNS = {"nfl": "nfl", "sorteddict": "SortedDict", "btrees": "BTrees", "dict": "dict"}


def _get(m, keys, _):
    for k in keys:
        m[k]


def _set(m, keys, _):
    for k in keys:
        m[k] = 1


def _delete(m, keys, _):
    for k in keys:
        del m[k]


def _iterate(m, _, __):
    for _k, _v in m.items():
        pass


def _irange(m, starts, ends):
    irange = m.irange if hasattr(m, "irange") else m.keys  # BTrees: keys(min, max), both inclusive
    for a, b in zip(starts, ends):
        list(irange(a, b))


def _restore_deleted(m, keys, values):
    for k, v in zip(keys, values):
        m[k] = v


# (name for --rows, row, timed op, untimed restore or None, which peers have it)
ROWS = (
    ("get", "get (hit)", _get, None, PEERS),
    ("insert", "insert new key", _set, _delete, PEERS),
    ("delete", "delete", _delete, _restore_deleted, PEERS),
    ("hot", "get, 1,000 hot keys", _get, None, PEERS),
    ("iterate", "iterate all items (per item)", _iterate, None, PEERS),
    ("irange", "list(irange(a, b)), 100 keys (per call)", _irange, None, ("nfl", "sorteddict", "btrees")),
)
ROW_KEYS = tuple(r[0] for r in ROWS)


def _inputs(keys, fresh, ops, seed):
    """Per row: (timed op's args, restore's args, ops counted) for the loaded keys; fresh: keys not loaded."""
    rng = np.random.default_rng([seed, 0x9E7F])  # not the stream workloads.datasets drew the keys from
    as_list = keys.tolist()
    hits = keys[rng.integers(0, keys.size, ops)].tolist()
    fresh = rng.permutation(fresh)[:ops].tolist()
    gone = rng.choice(keys.size, min(ops, keys.size), replace=False)
    gone_keys, gone_values = keys[gone].tolist(), gone.tolist()  # values are positions
    hot = keys[rng.choice(keys.size, min(1000, keys.size), replace=False)]
    hot = np.tile(hot, max(1, ops // hot.size))[rng.permutation(max(1, ops // hot.size) * hot.size)].tolist()
    starts = rng.integers(0, max(1, keys.size - 100), max(1, ops // 50))
    ends = np.minimum(starts + 99, keys.size - 1)
    return (
        ((hits, None), None, len(hits)),
        ((fresh, None), (fresh, None), len(fresh)),
        ((gone_keys, None), (gone_keys, gone_values), len(gone_keys)),
        ((hot, None), None, len(hot)),
        ((None, None), None, len(as_list)),
        (([as_list[i] for i in starts], [as_list[i] for i in ends]), None, len(starts)),
    )


# --clock: wall time, or the CPU time of this thread (on a shared machine: no time spent preempted)
CLOCKS = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}


def measure(maps, keys, fresh, ops, repeats, seed, rows=ROW_KEYS, now=time.perf_counter_ns):
    """{row: {peer: median ns per op}} of the rows named in rows (ROW_KEYS), timed with now (a CLOCKS
    value); repeats are interleaved across peers, each restores what it changed."""
    results = {}
    for (key, row, op, restore, peers), (args, restore_args, count) in zip(ROWS, _inputs(keys, fresh, ops, seed)):
        if key not in rows:
            continue
        times = {p: [] for p in peers if p in maps}
        for _ in range(repeats):
            for peer in times:
                m = maps[peer]
                t0 = now()
                op(m, *args)
                times[peer].append((now() - t0) / count)
                if restore is not None:
                    restore(m, *restore_args)
        results[row] = {p: float(np.median(t)) for p, t in times.items()}
    return results


def irange_floor(idx, sorted_dict, keys, fresh, ops, repeats, seed, now=time.perf_counter_ns):
    """What bounds nfl's list(irange(a, b)) of 100 keys: {part: median ns per call}.

    The irange row's ranges: SortedDict's irange (which hands out the int
    objects it holds), nfl's, nfl's irange stopped after its native read
    (operator.length_hint makes the first read and creates no int: the call,
    the cursor and the tree walk), and a list of 100 new ints alone
    (list(range(s, s + 100)) from each range's first key, capped below 2**63
    so that range makes them from C longs; dropped again, as the irange lists
    are).  nfl's irange cannot beat the read plus the ints, so SortedDict /
    (read + ints) is the most its ratio can reach with the tree walk as it is.
    Timed with now (a CLOCKS value)."""
    from operator import length_hint

    starts, ends = _inputs(keys, fresh, ops, seed)[-1][0]
    firsts = [min(a, 2**63 - 101) for a in starts]

    def sd():
        for a, b in zip(starts, ends):
            list(sorted_dict.irange(a, b))

    def ours():
        for a, b in zip(starts, ends):
            list(idx.irange(a, b))

    def read():
        for a, b in zip(starts, ends):
            length_hint(idx.irange(a, b))

    def ints():
        for a in firsts:
            list(range(a, a + 100))

    parts = {"SortedDict irange": sd, "nfl irange": ours, "nfl read only": read, "100 new ints": ints}
    times = {name: [] for name in parts}
    for _ in range(repeats):
        for name, fn in parts.items():
            t0 = now()
            fn()
            times[name].append((now() - t0) / len(starts))
    return {name: float(np.median(t)) for name, t in times.items()}


def floor_table(floor):
    """irange_floor's figures as a markdown table, with the ratio reached and the most reachable."""
    head = list(floor) + ["SortedDict / nfl", "SortedDict / (read + ints)"]
    cells = [f"{v:,.0f}" for v in floor.values()]
    sd = floor["SortedDict irange"]
    cells += [f"{sd / floor['nfl irange']:.2f}x", f"{sd / (floor['nfl read only'] + floor['100 new ints']):.2f}x"]
    return "\n".join(["| " + " | ".join(["irange, ns per call"] + head) + " |", "|" + "---|" * (len(head) + 1),
                      "| " + " | ".join(["100 keys"] + cells) + " |"])


def table(results, peers):
    """The markdown table: ns per op for each peer, then how many times faster nfl is than each."""
    others = [p for p in peers if p != "nfl"]
    head = ["op, ns"] + [COLUMNS[p] for p in peers] + [f"nfl vs {COLUMNS[p]}" for p in others]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, by_peer in results.items():
        cells = [f"{by_peer[p]:,.0f}" if p in by_peer else "–" for p in peers]
        ratios = [f"{by_peer[p] / by_peer['nfl']:.2f}x" if p in by_peer else "–" for p in others]
        lines.append("| " + " | ".join([row] + cells + ratios) + " |")
    return "\n".join(lines)


def main(argv=None):
    import argparse

    from . import adapters, workloads

    datasets = workloads("datasets")

    p = argparse.ArgumentParser(prog="python -m bench.perop", description=(
        "Single-key operations, one Python statement per op, nfl against SortedDict, BTrees and dict: "
        "median ns per op of --repeat interleaved runs, and nfl's speedup over each (>1: nfl is faster)."))
    p.add_argument("--n", type=int, default=1_000_000, help="keys loaded (default 1,000,000)")
    p.add_argument("--ops", type=int, default=100_000, help="ops per timed run (default 100,000)")
    p.add_argument("--datasets", default="lognormal,uniform", help="synthetic uint64 key sets (workloads.datasets)")
    p.add_argument("--flow", default="off", help="nfl's flow: off (default: the auto switch trains for a minute "
                                                   "at 1M keys), auto or on")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                   help="wall time (default), or this thread's CPU time (leaves out time preempted)")
    p.add_argument("--rows", default=",".join(ROW_KEYS),
                   help=f"rows to time, of {','.join(ROW_KEYS)} (default all; irange also prints what bounds it)")
    args = p.parse_args(argv)
    rows = args.rows.split(",")
    if args.n < 200 or args.ops < 100 or args.repeat < 1:
        p.error("need --n >= 200, --ops >= 100, --repeat >= 1")
    if not rows or not set(rows) <= set(ROW_KEYS):
        p.error(f"--rows takes names of {','.join(ROW_KEYS)}")
    peers = [peer for peer in PEERS if any(peer in r[4] for r in ROWS if r[0] in rows)]
    print(f"# python -m bench.perop --n {args.n} --ops {args.ops} --datasets {args.datasets} "
          f"--flow {args.flow} --repeat {args.repeat} --seed {args.seed} --rows {args.rows} --clock {args.clock}")
    for name in args.datasets.split(","):
        drawn = datasets.generate(name, args.n + args.ops, args.seed)  # new keys from the same distribution
        held_out = np.zeros(drawn.size, dtype=bool)
        held_out[np.random.default_rng(args.seed).choice(drawn.size, args.ops, replace=False)] = True
        keys, fresh = drawn[~held_out], drawn[held_out]
        values = np.arange(keys.size, dtype=np.int64)
        maps = {}
        for adapter in adapters.make(peers):
            if adapter.name == "nfl":
                adapter.flow = args.flow
            adapter.load(keys, values)
            maps[adapter.name] = adapter.index if adapter.name == "nfl" else adapter.map
        flow = "flow" if maps["nfl"].flow is not None else "no flow"
        print(f"\n## {name}: {keys.size:,} uint64 keys (nfl: {flow}; BTrees: {adapters.BTreesAdapter.MODULES['uint64']})"
              f", median of {args.repeat}\n")
        print(table(measure(maps, keys, fresh, min(args.ops, keys.size), args.repeat, args.seed, rows,
                            CLOCKS[args.clock]), peers))
        if "irange" in rows:
            print("\nWhat bounds the irange row (see irange_floor):\n")
            print(floor_table(irange_floor(maps["nfl"], maps["sorteddict"], keys, fresh, min(args.ops, keys.size),
                                           args.repeat, args.seed, CLOCKS[args.clock])))


if __name__ == "__main__":
    main()
