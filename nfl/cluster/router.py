"""Router: the named Ray actor that owns a ShardedIndex's routing table and its balance.

Clients read the table from here (`table`) and come back when a shard says
their table is stale.  The router runs one call at a time, so a client that
asks for the table while a split or merge is under way waits for it to
finish and gets the table that describes its result.

Balance (`rebalance`): a shard past twice the mean entry count is split in
two at its median key, a new shard actor taking the upper half; a shard below
a quarter of the mean is merged into its smaller neighbour.  Both keep the
data served throughout:

    split of S:  S.split_off     S refuses its upper half (new epoch, durably) and exports it
                 T.adopt         the new shard T takes it (durably, with a directory)
                 S.restrict      S drops the upper half and records its new range
                 table v+1       published: T after S

    merge of A, B:  B.hand_off   B refuses everything (durably) and exports it
                    A.adopt      A takes B's entries and the joined range
                    table v+1    published without B; B is closed, killed, its directory removed

A request refused in between is retried by its caller on table v+1, which
routes it to the shard that now holds its keys.

A shard that dies during a step: every step is idempotent, so the router
repeats it once Ray has restarted the shard from its directory (durable
shards), for up to STEP_SECONDS.  A shard that does not come back (an
in-memory shard, or past max_restarts) leaves the change half done: the
router is then out of service, and every client call raises
ShardUnavailableError saying so; the directories still hold every
acknowledged write, and ShardedIndex.open(path) finishes or undoes the change
(directory.reconcile).
"""
import os
import shutil
import time

import numpy as np
import ray

from nfl.cluster import directory
from nfl.cluster.errors import DEAD, ShardUnavailableError
from nfl.cluster.routing import Table
from nfl.cluster.shard import RANGE_FILE, Shard

ShardActor = ray.remote(Shard)
STEP_SECONDS = 60.0  # how long a split or merge step waits for its shard to come back


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
        self._broken = None  # why the router is out of service, once it is
        self.repeats = 0  # steps of splits and merges repeated after their shard died

    def table(self) -> Table:
        """The current table; ShardUnavailableError once a change of range could not be finished."""
        if self._broken is not None:
            raise ShardUnavailableError(self._broken)
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

    def _new_shard(self, number=None):
        if number is None:
            number, self._made = self._made, self._made + 1
        name = f"{self.name}/shard-{number}"
        folder = None if self.path is None else directory.shard_dir(self.path, number)
        handle = ShardActor.options(name=name, namespace=self.namespace, max_restarts=self.max_restarts,
                                    max_task_retries=0, num_cpus=0).remote(
            self.key_dtype, self.value_dtype, folder, self.sync)
        self._handles[name] = handle
        return name

    def _shard(self, name):
        return self._handles[name]

    def _step(self, name, method, *args):
        """shard name's method(*args), repeated while the shard dies and comes back (see module docstring).

        A step that fails otherwise, or whose shard does not come back,
        puts the router out of service (the change may be half done).
        """
        deadline = time.monotonic() + (STEP_SECONDS if self.max_restarts else 0)
        while True:
            try:
                return ray.get(getattr(self._shard(name), method).remote(*args))
            except DEAD as exc:
                self.repeats += 1
                if time.monotonic() > deadline:
                    self._out_of_service(f"shard {name} died during {method} of a change of ranges "
                                         "and did not come back", exc)
                time.sleep(0.2)
            except Exception as exc:
                self._out_of_service(f"{method} of a change of ranges failed on shard {name}: {exc}", exc)

    def _out_of_service(self, why, cause):
        self._broken = f"sharded index {self.name!r} is out of service: {why}" + (
            "" if self.path is None else f"; its directories keep every acknowledged write: destroy() it "
                                         f"and reopen with ShardedIndex.open({self.path!r})")
        raise ShardUnavailableError(self._broken) from cause

    # ---- reopening a durable cluster ----------------------------------------------------

    def reopen(self):
        """Starts a shard actor for every shard directory under path and serves the reconciled ranges.

        A half-done split or merge is finished or undone (directory.reconcile);
        every kept shard is restricted to its range under one new epoch.
        Returns the table.  Raises directory.ReconcileError if the ranges
        cannot be reconciled (nothing is changed then).
        """
        numbers = directory.list_shards(self.path)
        names = [self._new_shard(n) for n in numbers]
        self._made = max(numbers, default=-1) + 1
        saved = dict(zip(names, ray.get([self._shard(n).saved_range.remote() for n in names])))
        kept, dropped = directory.reconcile(saved)
        version = max(s["epoch"] for s in saved.values() if s is not None) + 1
        ray.get([self._shard(n).restrict.remote(lo, hi, version) for n, lo, hi in kept])
        for n in dropped:
            self._retire(n)
        bounds = np.array([lo for _, lo, _ in kept[1:]], dtype=self.key_dtype)
        self._table = Table(version, tuple(n for n, _, _ in kept), (version,) * len(kept), bounds)
        return self._table

    # ---- balance -------------------------------------------------------------

    def sizes(self):
        t = self._table
        return ray.get([self._shard(n).size.remote() for n in t.names])

    def rebalance(self) -> int:
        """Splits and merges until no shard is past 2x or below 1/4 of the mean; the count of changes."""
        self.table()
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

    def split(self, i) -> int:
        """Splits shard i at its median key (public for tests and operators); the steps it repeated."""
        before = self.repeats
        self.table()
        self._split(i)
        return self.repeats - before

    def merge(self, i) -> int:
        """Merges shard i+1 into shard i (public for tests and operators); the steps it repeated."""
        before = self.repeats
        self.table()
        self._merge(i)
        return self.repeats - before

    def _split(self, i):
        t = self._table
        s = t.names[i]
        epoch = t.version + 1
        new = self._new_shard()
        bound, keys, values = self._step(s, "split_off", epoch, new)
        _, hi = t.span(i)
        self._step(new, "adopt", keys, values, bound, hi, epoch, self._flow_for_new())
        lo, _ = t.span(i)
        self._step(s, "restrict", lo, bound, epoch)
        self._table = t.with_split(i, np.array(bound, dtype=t.bounds.dtype), new, epoch)

    def _merge(self, i):
        t = self._table
        a, b = t.names[i], t.names[i + 1]
        epoch = t.version + 1
        keys, values = self._step(b, "hand_off", epoch, a)
        lo, _ = t.span(i)
        _, hi = t.span(i + 1)
        self._step(a, "adopt", keys, values, lo, hi, epoch)
        self._table = t.with_merge(i, epoch)
        self._retire(b)

    def _flow_for_new(self):
        return "off" if self.flow is None else self.flow

    def _retire(self, name):
        """Closes and kills a shard that holds no range any more; removes its directory (range.json first)."""
        handle = self._handles.pop(name)
        try:
            ray.get(handle.close.remote())
        except DEAD:
            pass  # gone already; its directory goes all the same
        ray.kill(handle, no_restart=True)
        if self.path is not None:
            folder = directory.shard_dir(self.path, int(name.rsplit("-", 1)[1]))
            if os.path.exists(os.path.join(folder, RANGE_FILE)):
                os.unlink(os.path.join(folder, RANGE_FILE))  # unranged from here: reconcile drops it
            shutil.rmtree(folder, ignore_errors=True)

    def destroy(self):
        """Closes and kills every shard (the router is killed by the caller); directories stay."""
        for name in list(self._handles):
            handle = self._handles.pop(name)
            try:
                ray.get(handle.close.remote())
            except DEAD:
                pass  # already gone
            ray.kill(handle, no_restart=True)
