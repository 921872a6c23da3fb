"""The indexes under test, each behind one small common interface.

An adapter loads keys and values, exposes its per-op Python calls
(`handlers`), and, where the index has a batch API, replays a segment of an op
stream through it (`batch_pass`); an index with native single-op calls also
replays one op at a time in C, each op timed alone (`native_pass`).  What it cannot run it refuses with
NotApplicable and a reason, which the report shows as n/a.
"""
import itertools
import time

import numpy as np

from . import native
from .check import Mismatch, verify
from .ops import NAMES, READ, SCAN, describe, present
from .perop import Handlers

ALL_OPS = frozenset(range(len(NAMES)))
NO_BATCH = "no batch API (its per-op path is its best)"
NO_NATIVE = "no native per-op path (its single ops are Python calls)"


class NotApplicable(Exception):
    """This adapter cannot run this stream on this path; the message says why."""


class Adapter:
    """Base: declares what an index can run; subclasses load and serve it."""

    name = ""
    label = ""  # what the index is, for the report
    ops = ALL_OPS  # op codes the per-op path handles
    why_not = ""  # why the others are not handled
    batch_ops = frozenset()  # op codes the batch path handles; empty: no batch API
    batch_method = ""  # how the batch path runs and is timed
    batch_times_ops = False  # the batch path times each op (else per-op latency is derived)
    batch_latency = "derived: batch time / ops in the batch"  # how its per-op latency is had
    native_ops = frozenset()  # op codes the per-op native path handles; empty: it has none
    native_method = native_latency = ""  # how the per-op native path is timed (throughput, latency)

    def check(self, stream, path):
        """Raises NotApplicable when this adapter cannot run `stream` on `path`."""
        missing = set(present(stream)) - self.ops
        if missing:
            raise NotApplicable(f"{self.why_not}: no {describe(missing)}")
        if path == "batch":
            if not self.batch_ops:
                raise NotApplicable(NO_BATCH)
            missing = set(present(stream)) - self.batch_ops
            if missing:
                raise NotApplicable(f"batch API has no {describe(missing)}")
        if path == "per-op-native" and not self.native_ops:
            raise NotApplicable(NO_NATIVE)

    def load(self, keys, values):
        """Builds the index from scratch over keys (numpy) and int64 values."""
        raise NotImplementedError

    def handlers(self):
        """The per-op Python calls on the loaded index."""
        raise NotImplementedError

    def batch_pass(self, stream, start, end, batch, batch_ns, op_ns):
        """Runs ops [start, end) (start a multiple of batch) on the batch path.

        Writes each batch's ns to batch_ns[b // batch] and, if op_ns is given and
        batch_times_ops, each op's ns; raises Mismatch on a wrong read."""
        raise NotImplementedError

    def native_pass(self, stream, start, end, batch, batch_ns, op_ns):
        """batch_pass on the per-op native path: one op at a time in C, each timed alone into op_ns."""
        raise NotImplementedError

    def info(self):
        """Facts about the loaded index for the report (size, structure…)."""
        return {}


class Nfl(Adapter):
    """nfl.Index; the batch and per-op native paths are the native op-stream executor."""

    ops = batch_ops = native_ops = ALL_OPS
    batch_times_ops = True
    batch_method = "native executor (C), each batch of {batch} timed by the cycle counter"
    batch_latency = (
        "second replay, each op timed by the cycle counter (chained timestamps; includes one counter "
        "read, {overhead:.0f} ns); a batch of reads only executes as one fused batch lookup whose ops "
        "share its time equally; any other batch first prepares all its keys in one fused pass, whose "
        "time its ops share equally, then times each op"
    )
    native_method = "native executor (C), one op at a time, nothing fused or prefetched; each batch of {batch} " \
        "timed by the cycle counter"
    native_latency = (
        "second replay, each op timed alone by the cycle counter (a read just before and just after it, no "
        "time shared); includes one counter read, {overhead:.0f} ns (latency_net_ns subtracts it)"
    )

    def __init__(self, name, flow, prefetch=True):
        self.name, self.flow, self.prefetch = name, flow, prefetch
        self.label = f"nfl.Index, flow={flow!r}" + ("" if prefetch else ", prefetching off")
        self.index = None
        self._decided = (None, None)  # (keys, the flow the auto switch chose for them)

    def load(self, keys, values):
        """Bulk-loads; loads of the same key set again reuse the first one's flow choice, not retrain."""
        import nfl

        self._data = (keys, values)
        known, decided = self._decided
        flow = decided if known is not None and np.array_equal(known, keys) else self.flow
        # prefetch=False: the tuned lookup path switched off, for comparison
        self.index = nfl.Index.bulk_load(keys, values, flow=flow, prefetch=self.prefetch)
        self._decided = (keys, "off" if self.index.flow is None else self.index.flow)

    def handlers(self):
        ix = self.index
        return Handlers(ix.get, ix.__setitem__, ix.delete, ix.scan)

    def batch_pass(self, stream, start, end, batch, batch_ns, op_ns, each=False):
        bad, seg_batch_ns, seg_op_ns = native.Executor(stream).run(
            self.index._ptr, start, end, batch, time_ops=op_ns is not None, each=each
        )
        batch_ns[start // batch : start // batch + len(seg_batch_ns)] = seg_batch_ns
        if op_ns is not None:
            op_ns[start:end] = seg_op_ns
        if bad >= 0:
            path = "per-op-native" if each else "batch"
            raise Mismatch(self.name, path, stream, bad, self._replayed_read(stream, bad))

    def native_pass(self, stream, start, end, batch, batch_ns, op_ns):
        self.batch_pass(stream, start, end, batch, batch_ns, op_ns, each=True)

    def _replayed_read(self, stream, i):
        """What op i read: replays ops before it on a fresh index, then reads its key."""
        self.load(*self._data)
        native.Executor(stream).run(self.index._ptr, 0, i, 256)
        got = self.index.get(stream.key[i])
        return -1 if got is None else got

    def info(self):
        stats = self.index.stats()
        keep = ("size", "flow_enabled", "model_nodes", "dense_nodes", "max_depth", "avg_depth",
                "bucket_size", "tail_conflicts_raw", "tail_conflicts_flow", "memory_bytes")
        return {k: stats[k] for k in keep if k in stats}


class SortedDictAdapter(Adapter):
    """sortedcontainers.SortedDict: what a Python user picks for an ordered map."""

    name, label = "sorteddict", "sortedcontainers.SortedDict"

    def load(self, keys, values):
        from sortedcontainers import SortedDict

        self.map = SortedDict(zip(keys.tolist(), values.tolist()))

    def handlers(self):
        m = self.map
        items, bisect = m.items(), m.bisect_left

        def scan(key, count):
            i = bisect(key)
            return items[i : i + count]

        return Handlers(m.get, m.__setitem__, lambda k: m.pop(k, None), scan)


class DictAdapter(Adapter):
    """Python's dict: the hash-table baseline for point operations."""

    name, label = "dict", "dict (hash table)"
    ops = ALL_OPS - {SCAN}
    why_not = "hash table, unordered"

    def load(self, keys, values):
        self.map = dict(zip(keys.tolist(), values.tolist()))

    def handlers(self):
        m = self.map
        return Handlers(m.get, m.__setitem__, lambda k: m.pop(k, None), None)


class BTreesAdapter(Adapter):
    """BTrees (ZODB's C B+-trees), the module that fits the key dtype; per-op path only.

    uint64 keys: QLBTree (unsigned 64-bit keys, signed 64-bit values); int64:
    LLBTree; float64: OLBTree (BTrees has no float-keyed module: object keys,
    compared as Python floats)."""

    name, label = "btrees", "BTrees B+-tree (QLBTree/LLBTree/OLBTree by key dtype)"
    MODULES = {"uint64": "QLBTree", "int64": "LLBTree", "float64": "OLBTree"}

    def load(self, keys, values):
        import importlib

        module = self.MODULES[keys.dtype.name]
        self.label = f"BTrees.{module}"
        tree_type = getattr(importlib.import_module(f"BTrees.{module}"), f"{module[:2]}BTree")
        self.map = tree_type()
        self.map.update(list(zip(keys.tolist(), values.tolist())))  # a sequence of pairs (not an iterator)

    def handlers(self):
        t = self.map

        def scan(key, count):
            return list(itertools.islice(t.items(key), count))

        return Handlers(t.get, t.__setitem__, lambda k: t.pop(k, None), scan)


class _Static(Adapter):
    """A read-only index over the sorted keys; values in a parallel sorted array."""

    ops = frozenset({READ, SCAN})
    why_not = "static index, read-only"

    def load(self, keys, values):
        order = np.argsort(keys, kind="stable")
        self.keys, self.values = keys[order], np.asarray(values)[order]
        self._key_list, self._value_list = self.keys.tolist(), self.values.tolist()
        self._build()

    def _build(self):
        """Builds the structure searched by _rank."""

    def _rank(self):
        """The per-key call: key -> position of the first key >= it."""
        raise NotImplementedError

    def handlers(self):
        rank, ks, vs, n = self._rank(), self._key_list, self._value_list, len(self._key_list)

        def get(key):
            i = rank(key)
            return vs[i] if i < n and ks[i] == key else None

        def scan(key, count):
            i = rank(key)
            return list(zip(ks[i : i + count], vs[i : i + count]))

        return Handlers(get, None, None, scan)


class Pygm(_Static):
    """pygm.SortedSet (PGM-index binding, PyPI): static, per-key calls only."""

    name, label = "pygm", "pygm.SortedSet (PGM-index)"

    def _build(self):
        import pygm

        self.set = pygm.SortedSet(self.keys)

    def _rank(self):
        return self.set.bisect_left

    def info(self):
        return {k: v for k, v in self.set.stats().items() if k in ("epsilon", "height", "leaf segments")}


class _BatchLookups(_Static):
    """A static index whose batch path looks up a whole batch of reads in one vectorized call."""

    batch_ops = frozenset({READ})

    def _lookup(self, queries):
        """The values of a batch of query keys, -1 where absent."""
        raise NotImplementedError

    def batch_pass(self, stream, start, end, batch, batch_ns, op_ns):
        got = np.empty(end - start, dtype=np.int64)
        queries = stream.key
        for b in range(start, end, batch):
            e = min(b + batch, end)
            t0 = time.perf_counter_ns()
            got[b - start : e - start] = self._lookup(queries[b:e])
            batch_ns[b // batch] = time.perf_counter_ns() - t0
        verify(self.name, "batch", stream, start, got)


class SearchSorted(_BatchLookups):
    """numpy.searchsorted over a sorted array: static; batch path is vectorized lookups."""

    name, label = "searchsorted", "numpy.searchsorted over a sorted array"
    batch_method = "np.searchsorted per batch of {batch}, perf_counter_ns per batch"

    def _rank(self):
        # A key of the array's own dtype: given a Python int, numpy converts the whole array per call.
        search, as_key = self.keys.searchsorted, self.keys.dtype.type
        return lambda key: int(search(as_key(key)))

    def _lookup(self, queries):
        pos = np.minimum(np.searchsorted(self.keys, queries), len(self.keys) - 1)
        return np.where(self.keys[pos] == queries, self.values[pos], -1)


class PandasIndex(_BatchLookups):
    """pandas.Index over the loaded keys (a hash table on unique keys): read-only.

    Batch path: Index.get_indexer per batch; per-op path: Index.get_loc."""

    name, label = "pandas", "pandas.Index (get_indexer / get_loc)"
    batch_method = "pandas.Index.get_indexer per batch of {batch}, perf_counter_ns per batch"
    ops = frozenset({READ})
    why_not = "static index, lookups only"

    def _build(self):
        import pandas

        self.index = pandas.Index(self.keys)
        self.index.get_indexer(self.keys[:1])  # builds its hash table now, not in the first timed batch

    def _lookup(self, queries):
        pos = self.index.get_indexer(queries)
        return np.where(pos >= 0, self.values[pos], -1)

    def handlers(self):
        get_loc, vs = self.index.get_loc, self._value_list

        def get(key):
            try:
                return vs[get_loc(key)]
            except KeyError:
                return None

        return Handlers(get, None, None, None)


def make(names, shards=2):
    """Adapters by name, in the order given; shards: nfl-cluster's shard count."""
    from .cluster import NflCluster

    known = {
        "nfl-cluster": lambda: NflCluster("nfl-cluster", shards),
        "nfl": lambda: Nfl("nfl", "auto"),
        "afli": lambda: Nfl("afli", "off"),
        "nfl-noprefetch": lambda: Nfl("nfl-noprefetch", "auto", prefetch=False),
        "afli-noprefetch": lambda: Nfl("afli-noprefetch", "off", prefetch=False),
        "sorteddict": SortedDictAdapter,
        "btrees": BTreesAdapter,
        "dict": DictAdapter,
        "pandas": PandasIndex,
        "pygm": Pygm,
        "searchsorted": SearchSorted,
    }
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown index {unknown}; choose from {', '.join(known)}")
    return [known[n]() for n in names]


ALL = ("nfl", "afli", "sorteddict", "dict", "pygm", "searchsorted", "pandas")
