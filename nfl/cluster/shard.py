"""Shard: the Ray actor that holds one key range in an nfl.Index.

An actor runs one call at a time, so a request's epoch check and the
operation it guards are atomic: a request routed by a stale table is
refused whole (`call` returns None) and never half-applied.

A durable shard is a directory: the durable index (nfl.open) and range.json
(its range, epoch and any change of range under way), written atomically
before a change of range is acknowledged.  The directory appears whole: it
is built under a temporary name (the index bulk-loaded with the cluster's
flow, so a durable shard keeps its flow across restarts and checkpoints)
and renamed into place with its range.json.  When Ray restarts the actor
after its process died, the constructor reopens both, so every acknowledged
write is there and the shard answers under the same epoch as before.

Every step of a split or merge (split_off, adopt, restrict, hand_off) is
idempotent, so the router can repeat a step whose shard died under it and
came back; range.json records the step a shard has taken ("moving": its
upper part is being split off to another shard; "into": the shard is being
merged into another), which is what directory.reconcile reads when a whole
cluster is reopened.
"""
import json
import os
import shutil

import nfl
from nfl.storage import wal
from nfl.storage.files import atomic_write, fsync_dir

NO_EPOCH = -1  # owns no range: refuses every request
RANGE_FILE = "range.json"
_BUILDING = ".building"  # suffix of a durable shard's directory while it is being built
# What a client may run through call(): nfl.Index's public operations.
CALLS = frozenset({
    "get", "__setitem__", "insert", "update", "replace", "delete", "__contains__",
    "get_many", "put_many", "insert_many", "delete_many", "contains_many",
    "range", "scan", "lower_bound", "min_key", "max_key", "__len__", "stats",
})


def read_range(directory):
    """The saved range of a durable shard's directory (a dict), or None if it has none."""
    try:
        with open(os.path.join(directory, RANGE_FILE)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


class Shard:
    """One key range of a ShardedIndex (the actor body; see module docstring)."""

    def __init__(self, key_dtype, value_dtype, directory=None, sync="always"):
        self.directory, self.sync = directory, sync
        self.lo = self.hi = None
        self.epoch = NO_EPOCH
        self.pending = {}  # "moving" or "into", as in range.json
        saved = None if directory is None else read_range(directory)
        self.built = saved is not None  # a durable index in directory is open
        if not self.built:  # in memory, or a durable shard not built yet (adopt builds it)
            self.index = nfl.Index(key_dtype, value_dtype)
            return
        self.index = nfl.open(directory, key_dtype=key_dtype, value_dtype=value_dtype, sync=sync)
        self.lo, self.hi, self.epoch = saved["lo"], saved["hi"], saved["epoch"]
        self.pending = {k: saved[k] for k in ("moving", "into") if k in saved}

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

    def saved_range(self):
        """This shard's range as range.json holds it (a dict), or None if it has none."""
        if self.epoch == NO_EPOCH:
            return None
        return {"lo": self.lo, "hi": self.hi, "epoch": self.epoch, **self.pending}

    def info(self) -> dict:
        """stats() of the index with this shard's range, epoch, pending change and process."""
        return {**self.index.stats(), "lo": self.lo, "hi": self.hi, "epoch": self.epoch, "pid": os.getpid(),
                "durable": self.directory is not None, **self.pending}

    # ---- changing the range (the router's calls) ---------------------------------

    def _entries(self, start=None):
        """(keys, values) of every entry with key >= start (all when None), ascending."""
        first = self.index.min_key() if start is None else start
        return self.index.scan(0 if first is None else first, len(self.index))

    def _set_range(self, lo, hi, epoch, **pending):
        self.lo, self.hi, self.epoch, self.pending = lo, hi, epoch, pending
        if self.directory is not None:
            atomic_write(os.path.join(self.directory, RANGE_FILE), [json.dumps(self.saved_range()).encode()])

    def _build(self, keys, values, lo, hi, epoch, flow):
        """Makes this durable shard's directory whole: index bulk-loaded with flow, then range.json, then rename.

        A directory left by an earlier attempt had no range.json: it was
        never acknowledged, so it is replaced.
        """
        building = self.directory + _BUILDING
        for leftover in (building, self.directory):
            shutil.rmtree(leftover, ignore_errors=True)
        os.makedirs(building)
        wal.create(os.path.join(building, "wal"))  # a durable index: the log first, the snapshot second
        nfl.Index.bulk_load(keys, values, flow=flow).save(os.path.join(building, "snapshot"))
        text = json.dumps({"lo": lo, "hi": hi, "epoch": epoch}).encode()
        atomic_write(os.path.join(building, RANGE_FILE), [text])  # as saved_range() will say
        os.rename(building, self.directory)
        fsync_dir(os.path.dirname(os.path.abspath(self.directory)))
        self.index = nfl.open(self.directory, key_dtype=self.index.key_dtype,
                              value_dtype=self.index.value_dtype, sync=self.sync)
        self.built = True
        self.lo, self.hi, self.epoch, self.pending = lo, hi, epoch, {}

    def adopt(self, keys, values, lo, hi, epoch, flow="off"):
        """Takes entries and the range [lo, hi) under epoch (a no-op if it already has them).

        An empty shard is bulk-loaded with flow (a durable one built whole,
        see _build); one with entries takes them with put_many.
        """
        values = values.astype(self.index.value_dtype, copy=False)
        if (self.lo, self.hi, self.epoch) == (lo, hi, epoch):
            return  # a repeat after this shard died and came back
        if self.directory is not None and not self.built:
            self._build(keys, values, lo, hi, epoch, flow)
            return
        if self.directory is None and len(self.index) == 0:
            self.index = nfl.Index.bulk_load(keys, values, flow=flow)
        elif keys.size:
            self.index.put_many(keys, values)
            if self.directory is not None:
                self.index.checkpoint()
        self._set_range(lo, hi, epoch)

    def split_off(self, epoch, target):
        """Gives its upper half to target: refuses it from now on (durably) and returns it.

        Returns (bound, keys, values): the entries from bound up, which this
        shard still holds until restrict().  Needs at least 2 entries.  A
        repeat under the same epoch returns the same part.
        """
        if self.epoch != epoch:
            keys, _ = self._entries()
            bound = keys[keys.size // 2].item()
            self._set_range(self.lo, bound, epoch, moving={"hi": self.hi, "to": target})
        keys, values = self._entries(self.hi)
        return self.hi, keys, values

    def restrict(self, lo, hi, epoch):
        """Drops every entry outside [lo, hi) and takes that range under epoch, with no change pending.

        After split_off and the new shard's adopt: restrict(lo, bound, epoch)
        finishes the split; a reopened cluster restricts each shard to the
        range directory.reconcile gave it.
        """
        outside = []
        if lo is not None and len(self.index) and self.index.min_key() < lo:
            outside.append(self.index.range(self.index.min_key(), lo)[0])
        if hi is not None:
            outside.append(self._entries(hi)[0])
        for keys in outside:
            if keys.size:
                self.index.delete_many(keys)
        if self.directory is not None:
            self.index.checkpoint()
        self._set_range(lo, hi, epoch)

    def hand_off(self, epoch, target):
        """Refuses everything from now on (durably: merging into target) and returns all entries."""
        if self.epoch != epoch:
            self._set_range(self.lo, self.hi, epoch, into=target)
        return self._entries()

    def close(self):
        """Closes a durable index (releases its directory); the actor is then killed."""
        if self.built:
            self.index.close()
