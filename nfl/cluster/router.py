"""Router: the named Ray actor that owns a ShardedIndex's routing table and its balance.

Clients read the table from here (`table`) and come back when a shard says
their table is stale.  The router runs one call at a time, so a client that
asks for the table while a split or merge is under way waits for it to
finish and gets the table that describes its result.

Balance (`rebalance`): a shard past twice the mean entry count is split in
two at its median key, a new shard actor taking the upper half; a shard below
a quarter of the mean is merged into its smaller neighbour.  Both keep the
data served throughout:

    split of S:  S.split_off     S refuses its upper half (new epoch) and exports it
                 T.adopt         the new shard T takes it (durably, with a directory)
                 S.settle        S drops the upper half and records its new range
                 table v+1       published: T after S

    merge of A, B:  B.hand_off   B refuses everything and exports it
                    A.adopt      A takes B's entries and the joined range
                    table v+1    published without B; B is closed and killed

A request refused in between is retried by its caller on table v+1, which
routes it to the shard that now holds its keys.
"""
import os
import shutil

import numpy as np
import ray

from nfl.cluster.routing import Table
from nfl.cluster.shard import Shard

ShardActor = ray.remote(Shard)


class Router:
    """The table and balance of one sharded index (the actor body)."""

    def __init__(self, name, namespace, key_dtype, value_dtype, path=None, sync="always", flow=None,
                 max_restarts=5):
        self.name, self.namespace = name, namespace
        self.key_dtype, self.value_dtype = key_dtype, value_dtype
        self.path, self.sync, self.flow = path, sync, flow
        self.max_restarts = max_restarts if path is not None else 0  # in-memory shards cannot come back
        self._table = None
        self._handles = {}
        self._made = 0

    def table(self) -> Table:
        return self._table

    def describe(self):
        """(key dtype, value dtype, the flow chosen at bulk load or None)."""
        return self.key_dtype, self.value_dtype, self.flow

    def install(self, table):
        """The first table, after bulk_load filled the shards."""
        self._table = table

    def new_shards(self, count):
        """Starts count empty shard actors; returns their names (clients find them by name)."""
        return [self._new_shard() for _ in range(count)]

    def _new_shard(self):
        name = f"{self.name}/shard-{self._made}"
        self._made += 1
        directory = None if self.path is None else os.path.join(self.path, name.rsplit("/", 1)[1])
        handle = ShardActor.options(name=name, namespace=self.namespace, max_restarts=self.max_restarts,
                                    max_task_retries=0, num_cpus=0).remote(
            self.key_dtype, self.value_dtype, directory, self.sync)
        self._handles[name] = handle
        return name

    def _shard(self, name):
        return self._handles[name]

    # ---- balance -------------------------------------------------------------

    def sizes(self):
        t = self._table
        return ray.get([self._shard(n).size.remote() for n in t.names])

    def rebalance(self) -> int:
        """Splits and merges until no shard is past 2x or below 1/4 of the mean; the count of changes."""
        changes = 0
        for _ in range(4 * len(self._table) + 4):
            sizes = np.array(self.sizes())
            total, n = int(sizes.sum()), sizes.size
            mean = total / n
            big = int(np.argmax(sizes))
            if sizes[big] > 2 * mean and sizes[big] >= 2:
                self._split(big)
            elif not self._merge_smallest(sizes, mean):
                break
            changes += 1
        return changes

    def _merge_smallest(self, sizes, mean):
        """Merges the smallest shard below mean/4 into its smaller neighbour when that
        does not make a shard past twice the new mean; False when there is none."""
        n = sizes.size
        if n < 2:
            return False
        small = int(np.argmin(sizes))
        if sizes[small] >= mean / 4:
            return False
        left = small - 1 if small > 0 else None
        right = small + 1 if small < n - 1 else None
        other = min((j for j in (left, right) if j is not None), key=lambda j: sizes[j])
        if sizes[small] + sizes[other] > 2 * sizes.sum() / (n - 1):
            return False
        self._merge(min(small, other))
        return True

    def split(self, i):
        """Splits shard i at its median key (public for tests and operators)."""
        self._split(i)

    def merge(self, i):
        """Merges shard i+1 into shard i (public for tests and operators)."""
        self._merge(i)

    def _split(self, i):
        t = self._table
        s = self._shard(t.names[i])
        epoch = t.version + 1
        bound, keys, values = ray.get(s.split_off.remote(epoch))
        new = self._new_shard()
        _, hi = t.span(i)
        ray.get(self._shard(new).adopt.remote(keys, values, bound, hi, epoch, self._flow_for_new()))
        ray.get(s.settle.remote(epoch))
        self._table = t.with_split(i, np.array(bound, dtype=t.bounds.dtype), new, epoch)

    def _merge(self, i):
        t = self._table
        a, b = self._shard(t.names[i]), self._shard(t.names[i + 1])
        epoch = t.version + 1
        keys, values = ray.get(b.hand_off.remote())
        lo, _ = t.span(i)
        _, hi = t.span(i + 1)
        ray.get(a.adopt.remote(keys, values, lo, hi, epoch))
        self._table = t.with_merge(i, epoch)
        self._retire(t.names[i + 1])

    def _flow_for_new(self):
        return "off" if self.flow is None else self.flow

    def _retire(self, name):
        handle = self._handles.pop(name)
        ray.get(handle.close.remote())
        ray.kill(handle, no_restart=True)
        if self.path is not None:
            shutil.rmtree(os.path.join(self.path, name.rsplit("/", 1)[1]), ignore_errors=True)

    def destroy(self):
        """Closes and kills every shard (the router is killed by the caller)."""
        for name in list(self._handles):
            handle = self._handles.pop(name)
            try:
                ray.get(handle.close.remote())
            except ray.exceptions.RayActorError:
                pass  # already gone
            ray.kill(handle, no_restart=True)
