"""Object values in the runner: YCSB records stored in nfl (value_dtype="object") and its peers.

`python -m bench run --values records` replays a workload whose values are
YCSB records (workloads.records: 10 fields of 100 bytes by default, `-p
fieldcount=… -p fieldlength=…`) against nfl and afli with object values,
SortedDict, dict and BTrees' object-valued tree for the key dtype (QOBTree for
uint64 keys, LOBTree for int64, OOBTree for float64).  Every read is checked
by identity: the index must return the very record object the stream's last
write of that key stored.

Paths.  per-op: one Python call per op, as for integer values.  batch: each
batch of ops is cut into groups in which no read follows a write of the same
key; a group runs as one batch read of its reads (nfl: `get_many`; peers:
`list(map(m.get, keys))`) then one batch write of its writes (nfl: `put_many`;
peers: `m.update(pairs)`), which keeps the stream's semantics.  The groups
and their argument arrays are built once per stream, untimed, as the native
executor lays out an integer stream.  Scans and deletes have no batch form
here (n/a), and so has the per-op native path (the native executor replays
int64 values only).
"""
import time
from dataclasses import dataclass

import numpy as np

from .adapters import Adapter, BTreesAdapter, DictAdapter, Nfl, NotApplicable, SortedDictAdapter
from .check import verify_objects
from .ops import INSERT, READ, RMW, UPDATE
from .runner import NATIVE

BATCH_OPS = frozenset({READ, UPDATE, INSERT, RMW})
ALL = ("nfl", "afli", "sorteddict", "dict", "btrees")
PATHS = ("batch", "per-op")  # the paths object values run on
GROUPED = ("{batch}-op batches cut where a read follows a write of its key; per group one {how}; "
           "perf_counter_ns per batch")


@dataclass
class Group:
    """Consecutive ops of one batch: reads first (all see the state before the group), then writes in order."""

    reads: np.ndarray  # op positions whose results these reads give
    read_keys: np.ndarray
    read_list: list
    write_keys: np.ndarray
    write_values: np.ndarray  # object array
    write_pairs: list  # [(key, value)] for the peers' update()


def _groups(ops, keys, key_list, values, start, end):
    """The groups of ops [start, end): a read (or read-modify-write) of a key written earlier in
    the current group starts a new group."""
    out, reads, writes, written = [], [], [], set()

    def close():
        r, w = np.array(reads, dtype=np.int64), np.array(writes, dtype=np.int64)
        out.append(Group(r, keys[r], [key_list[i] for i in reads], keys[w], values[w],
                         [(key_list[i], values[i]) for i in writes]))
        reads.clear(), writes.clear(), written.clear()

    for i in range(start, end):
        c, k = ops[i], key_list[i]
        if c in (READ, RMW):
            if k in written:
                close()
            reads.append(i)
        if c in (UPDATE, INSERT, RMW):
            writes.append(i)
            written.add(k)
    if reads or writes:
        close()
    return out


def batch_plan(stream, batch):
    """The groups of every batch of `batch` ops of a RecordStream, built once while its records live."""

    def make():
        ops, key_list, values = stream.op.tolist(), stream.key.tolist(), stream.value
        n = len(ops)
        return [_groups(ops, stream.key, key_list, values, b, min(b + batch, n)) for b in range(0, n, batch)]

    return stream.memo(("batch plan", batch), make)


class GroupedBatch(Adapter):
    """The batch path of an object-valued index: batch read, then batch write, per group."""

    batch_ops = BATCH_OPS
    batch_times_ops = False
    native_ops = frozenset()

    def check(self, stream, path):
        if path == NATIVE:
            raise NotApplicable("the native executor replays int64 values only")
        super().check(stream, path)

    def read_group(self, group):
        """The values of group.reads' keys, in order (None where absent)."""
        raise NotImplementedError

    def write_group(self, group):
        """Stores group.write_values under group.write_keys, in order."""
        raise NotImplementedError

    def batch_pass(self, stream, start, end, batch, batch_ns, op_ns):
        plan = batch_plan(stream, batch)
        got = [None] * (end - start)
        read, write, now = self.read_group, self.write_group, time.perf_counter_ns
        for b in range(start, end, batch):
            groups = plan[b // batch]
            results = []
            t0 = now()
            for g in groups:
                if g.reads.size:
                    results.append(read(g))
                if g.write_keys.size:
                    write(g)
            batch_ns[b // batch] = now() - t0
            for g, values in zip((g for g in groups if g.reads.size), results):
                for i, v in zip(g.reads.tolist(), values):
                    got[i - start] = v
        verify_objects(self.name, "batch", stream, start, got)

    def release(self):
        """Drops the loaded index (and with it its references to the records)."""
        self.__dict__.pop("map", None)


class NflObjects(GroupedBatch, Nfl):
    """nfl.Index with value_dtype="object" (bulk_load of an object array)."""

    batch_method = GROUPED.replace("{how}", "get_many(keys) then one put_many(keys, values)")
    batch_latency = "derived: batch time / ops in the batch"

    def __init__(self, name, flow):
        super().__init__(name, flow)
        self.label = f"nfl.Index, value_dtype='object', flow={flow!r}"

    def read_group(self, group):
        return self.index.get_many(group.read_keys)[0]

    def write_group(self, group):
        self.index.put_many(group.write_keys, group.write_values)

    def release(self):
        self.index = self._data = None


class _MapGroups(GroupedBatch):
    """A Python mapping's batch idioms: list(map(m.get, keys)) and m.update(pairs)."""

    batch_method = GROUPED.replace("{how}", "list(map(m.get, keys)) then one m.update(pairs)")

    def read_group(self, group):
        return list(map(self.map.get, group.read_list))

    def write_group(self, group):
        self.map.update(group.write_pairs)


class SortedDictObjects(_MapGroups, SortedDictAdapter):
    """SortedDict holding the records."""


class DictObjects(_MapGroups, DictAdapter):
    """dict holding the records."""


class BTreesObjects(_MapGroups, BTreesAdapter):
    """BTrees' object-valued tree for the key dtype."""

    label = "BTrees B+-tree with object values (QOBTree/LOBTree/OOBTree by key dtype)"
    MODULES = {"uint64": "QOBTree", "int64": "LOBTree", "float64": "OOBTree"}


class IntValuesOnly(Adapter):
    """An index the runner measures with integer values only: n/a rows under object values."""

    def __init__(self, name):
        self.name = self.label = name

    def check(self, stream, path):
        raise NotApplicable("measured with int64 values only")


def make(names):
    """Object-valued adapters by name, in the order given; other known indexes report n/a."""
    from .adapters import make as make_int

    known = {"nfl": lambda: NflObjects("nfl", "auto"), "afli": lambda: NflObjects("afli", "off"),
             "sorteddict": SortedDictObjects, "dict": DictObjects, "btrees": BTreesObjects}
    make_int([n for n in names if n not in known])  # ValueError for a name no runner knows
    return [known[n]() if n in known else IntValuesOnly(n) for n in names]
