"""nfl.cluster under the benchmark: an adapter, and the scaling measurements.

    python -m bench run --dataset lognormal --workload workloadc --indexes nfl,nfl-cluster --shards 2
    python -m bench.cluster [--n 1000000] [--batch 65536] [--shards 2] [--repeat 5]

The adapter's batch path cuts each batch of the op stream into runs of one
kind of op and sends each run as one sharded batch call (reads: get_many;
updates and inserts: put_many; deletes: delete_many; read-modify-writes:
get_many then put_many; scans one by one), timed per batch.  The per-op path
is one sharded call per op: one Ray round trip each.

`python -m bench.cluster` measures what the README's scaling analysis uses:
get_many of n keys in batches against one in-process nfl.Index on one thread
(the overhead per batch and per key), and a skewed insert stream with and
without splits.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from .adapters import Adapter
from .check import verify
from .ops import DELETE, INSERT, READ, RMW, SCAN, UPDATE
from .perop import Handlers
from .timing import samples_ns


def _start_ray(cpus=None, inline_bytes=None):
    """A local Ray cluster; inline_bytes: Ray's max_direct_call_object_size (None: nfl.cluster's choice, 0: Ray's)."""
    import ray

    from nfl.cluster.sharded import INLINE_BYTES

    if not ray.is_initialized():
        inline_bytes = INLINE_BYTES if inline_bytes is None else inline_bytes
        if inline_bytes:
            os.environ.setdefault("RAY_max_direct_call_object_size", str(inline_bytes))
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, namespace="nfl-bench")


class NflCluster(Adapter):
    """nfl.cluster.ShardedIndex on a local Ray cluster."""

    batch_ops = frozenset({READ, UPDATE, INSERT, SCAN, RMW, DELETE})
    batch_method = "sharded batch calls per run of one op kind, perf_counter_ns per batch of {batch}"

    def __init__(self, name="nfl-cluster", shards=2, flow="auto"):
        self.name, self.shards, self.flow = name, shards, flow
        self.label = f"nfl.cluster.ShardedIndex, {shards} shards (Ray actors), flow={flow!r}"
        self.index = None
        self._decided = (None, None)

    def load(self, keys, values):
        """Bulk-loads a fresh sharded index (the previous one destroyed); reuses the first flow choice."""
        from nfl.cluster import ShardedIndex

        _start_ray()
        if self.index is not None:
            self.index.destroy()
        known, decided = self._decided
        flow = decided if known is not None and np.array_equal(known, keys) else self.flow
        self.index = ShardedIndex.bulk_load(keys, values, shards=self.shards, flow=flow, name=self.name,
                                            namespace="nfl-bench", balance=True)
        self._decided = (keys, "off" if self.index.flow is None else self.index.flow)

    def handlers(self):
        ix = self.index
        return Handlers(ix.get, ix.__setitem__, ix.delete, ix.scan)

    def batch_pass(self, stream, start, end, batch, batch_ns, op_ns):
        kind = stream.op.copy()
        kind[kind == INSERT] = UPDATE  # both upsert, as on the per-op path
        got = np.full(end - start, -1, dtype=np.int64)
        for b in range(start, end, batch):
            e = min(b + batch, end)
            t0 = time.perf_counter_ns()
            cuts = np.flatnonzero(np.diff(kind[b:e])) + 1 + b
            for s, t in zip(np.concatenate([[b], cuts]), np.concatenate([cuts, [e]])):
                self._run(stream, int(kind[s]), s, t, got[s - start:t - start])
            batch_ns[b // batch] = time.perf_counter_ns() - t0
        verify(self.name, "batch", stream, start, got)

    def _run(self, stream, kind, s, e, got):
        """Ops [s, e) of one kind as sharded batch calls; read results into got."""
        ix, keys = self.index, stream.key[s:e]
        if kind == READ:
            values, found = ix.get_many(keys)
            got[found] = values[found]
        elif kind == UPDATE:
            ix.put_many(keys, stream.value[s:e])
        elif kind == DELETE:
            ix.delete_many(keys)
        elif kind == SCAN:
            for k, n in zip(keys.tolist(), stream.scan_len[s:e].tolist()):
                ix.scan(k, n)
        elif np.unique(keys).size == keys.size:  # read-modify-writes of distinct keys: one read, one write
            values, found = ix.get_many(keys)
            got[found] = values[found]
            ix.put_many(keys, stream.value[s:e])
        else:  # a key read after its own write in this run: one at a time
            for i in range(e - s):
                self._run(stream, kind, s + i, s + i + 1, got[i:i + 1])

    def info(self):
        st = self.index.stats()
        return {"size": st["size"], "shards": st["shard_count"], "memory_bytes": st["memory_bytes"],
                "shard_sizes": [s["size"] for s in st["shards"]]}


# ---- python -m bench.cluster: the scaling measurements ---------------------------------------------


def measure_reads(n, batch, shards, repeat, seed=1):
    """get_many of all n keys (shuffled) in batches: sharded vs one in-process nfl.Index."""
    import nfl
    from nfl.cluster import ShardedIndex

    rng = np.random.default_rng(seed)
    keys = np.unique(rng.lognormal(0, 2, int(n * 1.05)) * 1e12).astype(np.uint64)[:n]
    keys = keys[rng.permutation(keys.size)]
    queries = keys[rng.permutation(keys.size)]
    parts = [queries[i:i + batch] for i in range(0, queries.size, batch)]
    local = nfl.Index.bulk_load(keys, flow="off")
    sidx = ShardedIndex.bulk_load(keys, shards=shards, flow="off", name="bench-reads", namespace="nfl-bench",
                                  balance=False)
    try:
        def run_local():
            for p in parts:
                local.get_many(p)

        def run_sharded():
            for p in parts:
                sidx.get_many(p)

        def run_routing():  # the client's own work: validation, searchsorted, radix sort, scatter
            t = sidx._table
            for p in parts:
                k = sidx._key_array(p)
                out = np.empty(k.size, dtype=np.int64)
                for i, pos in t.partition(k):
                    out[pos] = k[pos].view(np.int64)

        run_sharded()  # warm: actors' first calls, object store
        order = [("local", run_local), ("sharded", run_sharded), ("routing", run_routing)]
        times = {name: [] for name, _ in order}
        for _ in range(repeat):  # interleaved, so that a change of load meets every variant alike
            for name, fn in order:
                times[name] += samples_ns(fn, 1)
        results = {name: (float(np.median(ts)), ts) for name, ts in times.items()}
        tiny = np.array([keys[0]], dtype=np.uint64)
        trips = samples_ns(lambda: [sidx.get_many(tiny) for _ in range(100)], repeat)
        results["round_trip_1key"] = (float(np.median(trips)) / 100, trips)
    finally:
        sidx.destroy()
    nb = len(parts)
    local_ns, sharded_ns, routing_ns = results["local"][0], results["sharded"][0], results["routing"][0]
    return {
        "keys": int(keys.size), "batch": batch, "batches": nb, "shards": shards, "repeat": repeat,
        "local_ns_per_key": local_ns / keys.size, "sharded_ns_per_key": sharded_ns / keys.size,
        "sharded_over_local": sharded_ns / local_ns,
        "overhead_ns_per_batch": (sharded_ns - local_ns) / nb,
        "overhead_ns_per_key": (sharded_ns - local_ns) / keys.size,
        "client_routing_ns_per_key": routing_ns / keys.size,
        "round_trip_1key_us": results["round_trip_1key"][0] / 1e3,
        "all_ns": {k: v[1] for k, v in results.items()},
    }


def measure_skew(n, shards, inserts, batch, seed=2):
    """A skewed insert stream (every new key above the loaded ones: one shard takes them all),
    with balance off and on: the largest shard's share and the insert throughput."""
    from nfl.cluster import ShardedIndex

    rng = np.random.default_rng(seed)
    keys = rng.choice(10**12, n, replace=False).astype(np.uint64)
    hot = (10**12 + rng.choice(10**9, inserts, replace=False)).astype(np.uint64)
    out = {}
    for balance in (False, True):
        sidx = ShardedIndex.bulk_load(keys, shards=shards, flow="off", name=f"bench-skew-{balance}",
                                      namespace="nfl-bench", balance=balance)
        try:
            t0 = time.perf_counter_ns()
            for i in range(0, hot.size, batch):
                sidx.insert_many(hot[i:i + batch], np.arange(i, min(i + batch, hot.size)))
            insert_ns = time.perf_counter_ns() - t0
            if balance:
                sidx.rebalance()  # let a split fired by the last batch finish before reading sizes
            sizes = [s["size"] for s in sidx.stats()["shards"]]
            reads = hot[rng.permutation(hot.size)]
            t0 = time.perf_counter_ns()
            for i in range(0, reads.size, batch):
                sidx.get_many(reads[i:i + batch])
            read_ns = time.perf_counter_ns() - t0
        finally:
            sidx.destroy()
        out["balance" if balance else "no_balance"] = {
            "insert_keys_per_s": hot.size / (insert_ns * 1e-9), "read_hot_keys_per_s": hot.size / (read_ns * 1e-9),
            "shard_sizes": sizes, "largest_share": max(sizes) / sum(sizes)}
    return {"loaded": n, "inserts": inserts, "batch": batch, "shards": shards, **out}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=65536)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cpus", type=int, default=2, help="num_cpus of the local Ray cluster")
    ap.add_argument("--skew-inserts", type=int, default=1_000_000)
    ap.add_argument("--skew-shards", type=int, default=4)
    ap.add_argument("--skip-reads", action="store_true", help="only the skewed insert stream")
    ap.add_argument("--skip-skew", action="store_true", help="only the reads")
    ap.add_argument("--inline-bytes", type=int, default=None,
                    help="Ray's max_direct_call_object_size (default: nfl.cluster's, 4 MiB; 0: Ray's, 100 KiB)")
    args = ap.parse_args(argv)
    _start_ray(args.cpus, args.inline_bytes)
    report = {"command": " ".join(["python -m bench.cluster", *sys.argv[1:]]),
              "inline_bytes": os.environ.get("RAY_max_direct_call_object_size"),
              "reads": None if args.skip_reads else measure_reads(args.n, args.batch, args.shards, args.repeat),
              "skew": None if args.skip_skew else measure_skew(args.n, args.skew_shards, args.skew_inserts, 8192)}
    print(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
