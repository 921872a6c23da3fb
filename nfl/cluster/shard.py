"""Shard: the Ray actor that holds one key range in an nfl.Index.

An actor runs one call at a time, so a request's epoch check and the
operation it guards are atomic: a request routed by a stale table is
refused whole (`call` returns None) and never half-applied.

A durable shard keeps a directory: the durable index (nfl.open) and
range.json (its range and epoch, written atomically before a change of range
is acknowledged).  When Ray restarts the actor after its process died, the
constructor reopens both, so every acknowledged write is there and the shard
answers under the same epoch as before.
"""
import json
import os

import nfl
from nfl.storage.files import atomic_write

NO_EPOCH = -1  # owns no range: refuses every request
_RANGE_FILE = "range.json"
# What a client may run through call(): nfl.Index's public operations.
CALLS = frozenset({
    "get", "__setitem__", "insert", "update", "replace", "delete", "__contains__",
    "get_many", "put_many", "insert_many", "delete_many", "contains_many",
    "range", "scan", "lower_bound", "min_key", "max_key", "__len__", "stats",
})


class Shard:
    """One key range of a ShardedIndex (the actor body; see module docstring)."""

    def __init__(self, key_dtype, value_dtype, directory=None, sync="always"):
        self.directory = directory
        self.lo = self.hi = None
        self.epoch = NO_EPOCH
        if directory is None:
            self.index = nfl.Index(key_dtype, value_dtype)
            return
        self.index = nfl.open(directory, key_dtype=key_dtype, value_dtype=value_dtype, sync=sync)
        try:
            with open(os.path.join(directory, _RANGE_FILE)) as f:
                saved = json.load(f)
        except FileNotFoundError:
            return  # created, never given a range
        self.lo, self.hi, self.epoch = saved["lo"], saved["hi"], saved["epoch"]

    # ---- serving -------------------------------------------------------------

    def call(self, epoch, method, *args):
        """(result, size) of index.method(*args), or None if epoch is not this shard's."""
        if epoch != self.epoch:
            return None
        if method not in CALLS:
            raise ValueError(f"not a shard operation: {method!r}")
        if method == "replace" and not hasattr(self.index, "replace"):
            method = "update"  # its name before nfl.Index.replace
        return getattr(self.index, method)(*args), len(self.index)

    def size(self) -> int:
        return len(self.index)

    def pid(self) -> int:
        return os.getpid()

    def info(self) -> dict:
        """stats() of the index with this shard's range, epoch and process."""
        return {**self.index.stats(), "lo": self.lo, "hi": self.hi, "epoch": self.epoch, "pid": os.getpid(),
                "durable": self.directory is not None}

    # ---- changing the range (the router's calls) ---------------------------------

    def _entries(self, start=None):
        """(keys, values) of every entry with key >= start (all when None), ascending."""
        first = self.index.min_key() if start is None else start
        return self.index.scan(0 if first is None else first, len(self.index))

    def _set_range(self, lo, hi, epoch):
        if self.directory is not None:
            text = json.dumps({"lo": lo, "hi": hi, "epoch": epoch}).encode()
            atomic_write(os.path.join(self.directory, _RANGE_FILE), [text])
        self.lo, self.hi, self.epoch = lo, hi, epoch

    def adopt(self, keys, values, lo, hi, epoch, flow="off"):
        """Takes entries and the range [lo, hi) under epoch; an empty in-memory shard bulk-loads them."""
        if self.directory is None and len(self.index) == 0:
            self.index = nfl.Index.bulk_load(keys, values.astype(self.index.value_dtype, copy=False), flow=flow)
        elif keys.size:
            self.index.put_many(keys, values)
            if self.directory is not None:
                self.index.checkpoint()
        self._set_range(lo, hi, epoch)

    def split_off(self, epoch):
        """Refuses the upper half from now on (epoch changes in memory) and returns it.

        Returns (bound, keys, values): the upper half's entries, which this
        shard still holds until settle().  Needs at least 2 entries.
        """
        keys, values = self._entries()
        half = keys.size // 2
        bound = keys[half].item()
        self.hi, self.epoch = bound, epoch
        return bound, keys[half:], values[half:]

    def settle(self, epoch):
        """After split_off and the new shard's adopt: drops the upper half and records the range."""
        if self.hi is not None:
            upper, _ = self._entries(self.hi)
            if upper.size:
                self.index.delete_many(upper)
        if self.directory is not None:
            self.index.checkpoint()
        self._set_range(self.lo, self.hi, epoch)

    def hand_off(self):
        """Refuses everything from now on and returns all entries (a merge takes them)."""
        self.epoch = NO_EPOCH
        return self._entries()

    def close(self):
        """Closes a durable index (releases its directory); the actor is then killed."""
        if self.directory is not None:
            self.index.close()
