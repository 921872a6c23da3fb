"""ShardedIndex: nfl.Index's API over range shards, one Ray actor per shard.

A client holds a copy of the routing table (routing.Table).  A single-key
call goes to the one shard owning the key; a batch call is split by owner
with one vectorised searchsorted, the parts are sent to every shard at once
(numpy arrays travel through Ray's object store) and the answers are put
back in the caller's order.  Every request names the epoch of the shard's
range it was routed by; a shard whose range changed since (a split or merge)
refuses it, and the client fetches the new table from the router and sends
the refused part again, so a request is applied once, by the owner of its
keys.

Not atomic across shards: a batch that spans shards is applied shard by
shard, and a shard that dies mid-call (ShardUnavailableError) may or may not
have applied its part; the other parts were applied.
"""
import os
import time

import numpy as np
import ray

from nfl import _keys
from nfl.cluster import directory
from nfl.cluster.errors import DEAD, ShardUnavailableError
from nfl.cluster.router import Router
from nfl.cluster.routing import Table, flow_bounds, quantile_bounds

RouterActor = ray.remote(Router)
_CHUNK = 4096  # keys per scan() call of an ascending irange
_MAX_STUCK = 20  # refusals under an unchanged table before giving up


INLINE_BYTES = 4 << 20  # arguments and results up to this size travel inside Ray's task messages


def _start_ray(namespace):
    """ray.init(namespace=...) unless Ray is running in this process.

    A Ray it starts passes objects up to INLINE_BYTES inside its task
    messages, not through the shared-memory object store (Ray's default
    cut is 100 KiB): a shard's part of a 64K-key batch is 256 KiB out and
    288 KiB back, and the object store's create/seal/fetch round trips cost
    more than copying that inline (README: measured).  Set
    RAY_max_direct_call_object_size yourself to choose otherwise, or when
    you start Ray yourself.
    """
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_max_direct_call_object_size", str(INLINE_BYTES))
    ray.init(namespace=namespace)


def _router_name(name):
    return f"{name}/router"


class ShardedIndex:
    """An ordered map from 8-byte keys to 8-byte integer values over Ray actors.

    Build one with ShardedIndex.bulk_load(keys, ...); attach another client to
    running shards with ShardedIndex.connect(name, namespace); restart a
    durable one whose actors are all gone with ShardedIndex.open(path).  A client
    object is for one thread; several clients (threads, processes, machines)
    may share the shards.
    """

    def __init__(self, router, name, namespace, balance=True):
        """A client of the shards a router actor serves; use bulk_load or connect, which make it.

        Raises what Ray raises if the router is gone Cost: two Ray calls to the router.
        """
        self._router, self.name, self.namespace = router, name, namespace
        self._balance = balance
        self._handles = {}
        self._pending_rebalance = None
        self._sizes = {}
        self._stuck = 0
        self._table = ray.get(router.table.remote())
        self.key_dtype, self.value_dtype, self.flow = ray.get(router.describe.remote())
        self._key = _keys.key_converter(self.key_dtype)

    # ---- building and attaching -------------------------------------------------

    @classmethod
    def bulk_load(cls, keys, values=None, *, shards=2, flow="auto", path=None, name="nfl", namespace="nfl",
                  sync="always", balance=True, detached=False, max_restarts=5):
        """A sharded index over keys (any order), in `shards` ranges of equal entry counts.

        keys/values/flow: as nfl.Index.bulk_load (the flow is chosen once, on
        all keys, and every shard, durable or not, and every shard a split
        makes later uses it).  The ranges are cut where the flow's CDF
        crosses 1/N, 2/N, ... when a flow is chosen (routing.flow_bounds),
        else at the exact key quantiles (also when the flow leaves a slice
        empty).  path: a new directory for durable shards (directory.py:
        path/shard-<n>, each an nfl.open index with range.json; FileExistsError
        if path holds a sharded index already: reopen it with open());
        Ray restarts a durable shard's actor up to max_restarts times from
        its directory.  name/namespace: the Ray names to connect() by;
        detached: actors outlive this driver.  balance: split/merge shards
        as writes skew them.  Starts Ray (see _start_ray) if it is not running.
        Raises what nfl.Index.bulk_load raises for keys, values and flow,
        ValueError for shards < 1 (the actors made so far are destroyed on any
        failure).  Cost: O(n) to find the cuts (plus the flow's training, if asked),
        one bulk load per shard, all shards in parallel.
        """
        from nfl.switch import choose_flow

        _start_ray(namespace)
        keys = _keys.bulk_keys(keys)
        if values is None:
            values = np.arange(keys.size, dtype=np.int64)
        values = np.asarray(values)
        value_dtype = "uint64" if values.dtype.kind == "u" and values.ndim == 1 else "int64"
        values = _keys.value_array(values, value_dtype, keys.size).view(value_dtype)
        if type(shards) is not int or shards < 1:
            raise ValueError(f"shards must be an int >= 1, got {shards!r}")
        chosen = choose_flow(keys, flow).flow
        count = min(shards, max(1, keys.size))
        bounds = None if chosen is None or count == 1 else flow_bounds(keys, chosen, count)
        bounds = quantile_bounds(keys, count) if bounds is None else bounds
        if path is not None:
            path = os.fspath(path)
            directory.write_manifest(path, keys.dtype.name, value_dtype, sync, chosen)
        router = cls._start_router(name, namespace, detached, keys.dtype.name, value_dtype, path, sync, chosen,
                                   max_restarts)
        try:
            names = ray.get(router.new_shards.remote(bounds.size + 1))
            table = Table(1, tuple(names), (1,) * len(names), bounds)
            owned, none = dict(table.partition(keys)), np.arange(0)
            ray.get([ray.get_actor(n, namespace=namespace).adopt.remote(
                keys[owned.get(i, none)], values[owned.get(i, none)], *table.span(i), 1,
                "off" if chosen is None else chosen)
                for i, n in enumerate(names)])
            ray.get(router.install.remote(table))
        except BaseException:
            ray.get(router.destroy.remote())
            ray.kill(router)
            raise
        return cls(router, name, namespace, balance)

    @staticmethod
    def _start_router(name, namespace, detached, *args):
        options = {"name": _router_name(name), "namespace": namespace, "num_cpus": 0,
                   "lifetime": "detached" if detached else None}
        return RouterActor.options(**options).remote(name, namespace, *args)

    @classmethod
    def open(cls, path, *, name="nfl", namespace="nfl", balance=True, detached=False, max_restarts=5):
        """Reopens the durable sharded index in path after its actors are gone (all of them).

        Starts a router and one shard actor per shard directory; each shard
        reopens its durable index (every acknowledged write, its flow); a
        split or merge a crash left half done is finished or undone
        (directory.reconcile); the table's boundaries are the shards' saved
        ranges.  name/namespace/balance/detached/max_restarts: as bulk_load.
        Raises FileNotFoundError if path holds no sharded index,
        directory.ReconcileError (a ValueError) if the shards' ranges cannot
        be reconciled, ValueError if the name is taken by running actors.
        Cost: each shard's nfl.open (snapshot load and log replay), in parallel.
        """
        _start_ray(namespace)
        path = os.fspath(path)
        key_dtype, value_dtype, sync, flow = directory.read_manifest(path)
        router = cls._start_router(name, namespace, detached, key_dtype, value_dtype, path, sync, flow,
                                   max_restarts)
        try:
            ray.get(router.reopen.remote())
        except BaseException:
            ray.get(router.destroy.remote())
            ray.kill(router)
            raise
        return cls(router, name, namespace, balance)

    @classmethod
    def connect(cls, name="nfl", namespace="nfl", *, balance=True):
        """A client of the running sharded index called name in namespace.

        Raises ValueError if there is none. Cost: two Ray calls to the router
        (Ray is started first, see _start_ray, if it is not running).
        """
        _start_ray(namespace)
        return cls(ray.get_actor(_router_name(name), namespace=namespace), name, namespace, balance)

    def destroy(self):
        """Closes and kills every shard and the router; this and every other client are then unusable.

        Raises what Ray raises if the router is already gone. Cost: one call per shard to close it.
        """
        ray.get(self._router.destroy.remote())
        ray.kill(self._router)

    # ---- routing ----------------------------------------------------------------------

    def _refresh(self, stale=False):
        """Fetches the router's table; stale: a shard refused a request routed by the current one.

        The router hands out a table only between splits and merges, so after
        a refusal the table is normally newer; a shard that keeps refusing
        the router's own table is out of step with it (e.g. it died during
        its split): ShardUnavailableError after a few tries, not a hang.
        """
        version = self._table.version if stale else None
        self._table = ray.get(self._router.table.remote())
        if self._table.version != version:
            self._stuck = 0
            return
        self._stuck += 1
        if self._stuck > _MAX_STUCK:
            raise ShardUnavailableError(f"a shard of {self.name!r} refuses requests routed by the router's "
                                        f"table (version {version}); its range is out of step with it")
        time.sleep(0.01 * self._stuck)

    def _shard(self, name):
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = ray.get_actor(name, namespace=self.namespace)
        return handle

    def _get(self, refs, names, what):
        """ray.get of shard calls (a list, or one ref): answers, None where refused as stale.

        A shard that died is stale when the router has retired it (merged
        away: it refused everything from its hand-off on, so nothing queued
        there ran); otherwise ShardUnavailableError.
        """
        try:
            return ray.get(refs)
        except DEAD:
            pass
        self._refresh()
        alive = set(self._table.names)
        answers = []
        for ref, name in zip(refs if isinstance(refs, list) else [refs], names):
            try:
                answers.append(ray.get(ref))
            except DEAD as exc:
                if name in alive:
                    raise ShardUnavailableError(
                        f"shard {name} of {self.name!r} died or is restarting during {what}; "
                        "its part of the call may or may not have been applied") from exc
                answers.append(None)
        return answers if isinstance(refs, list) else answers[0]

    def _send(self, i, method, *args):
        """A ref to shard i's answer to method(*args) under the current table."""
        t = self._table
        try:
            handle = self._shard(t.names[i])
        except ValueError:  # no actor by that name: merged away since this table
            return ray.put(None)  # an answer of "stale"
        return handle.call.remote(t.epochs[i], method, *args)

    def _one(self, method, key, *args):
        """method(key, *args) on the shard owning key, retried on a stale table."""
        k = _keys.key_from_bits(self._key(key), self.key_dtype)  # checked, and as the shard compares it
        while True:
            t = self._table
            i = t.shard_of(k)
            got = self._get(self._send(i, method, k, *args), [t.names[i]], method)
            if got is not None:
                self._sizes[t.names[i]] = got[1]
                return got[0]
            self._refresh(stale=True)

    def _batch(self, method, keys, values=None, out=()):
        """Runs method on each shard's part of keys (and values); fills the arrays of out in caller order.

        out: arrays of len(keys) for the per-key results (one, or two for
        get_many's (values, found)).  Parts refused on a stale table are sent
        again after a refresh; accepted ones are never re-sent.
        """
        todo = None  # the positions still to run; None: all (the first pass, no copy)
        write = method in ("put_many", "insert_many", "delete_many")
        while True:
            t = self._table
            sub = keys if todo is None else keys[todo]
            parts = [(i, pos if todo is None else todo[pos], pos) for i, pos in t.partition(sub)]
            refs = [self._send(i, method, sub[pos], *(() if values is None else (values[where],)))
                    for i, where, pos in parts]
            answers = self._get(refs, [t.names[i] for i, _, _ in parts], method)
            refused = []
            for (i, where, _), got in zip(parts, answers):
                if got is None:
                    refused.append(where)
                    continue
                result, self._sizes[t.names[i]] = got
                for arr, part in zip(out, result if len(out) > 1 else (result,)):
                    arr[where] = part
            if refused:
                self._refresh(stale=True)
                todo = np.sort(np.concatenate(refused))  # the caller's order again
            else:
                break
        if write:
            self._maybe_rebalance()

    def _maybe_rebalance(self):
        """Asks the router to rebalance (without waiting) when the sizes seen suggest a skew."""
        if not self._balance:
            return
        if self._pending_rebalance is not None:
            done, _ = ray.wait([self._pending_rebalance], timeout=0)
            if not done:
                return
            self._pending_rebalance = None
        sizes = [self._sizes.get(n) for n in self._table.names]
        known = [s for s in sizes if s is not None]
        if len(known) < len(sizes):
            return
        mean = sum(known) / len(known)
        if max(known) > 2 * mean or (len(known) > 1 and min(known) < mean / 4):
            self._pending_rebalance = self._router.rebalance.remote()

    def rebalance(self) -> int:
        """Splits and merges shards now (see Router.rebalance); the number of changes made.

        Raises ShardUnavailableError if a shard's actor dies meanwhile. Cost: one router call, plus
        a bulk load of each shard it splits or merges.
        """
        changes = ray.get(self._router.rebalance.remote())
        self._refresh()
        return changes

    def _key_array(self, keys):
        return _keys.key_array(keys, self.key_dtype).view(self.key_dtype)

    def _value_array(self, values, n):
        return _keys.value_array(values, self.value_dtype, n).view(self.value_dtype)

    # ---- point operations -----------------------------------------------------------

    def get(self, key, default=None):
        """The value of key, or default.

        Raises ValueError/TypeError for a key (or value) the dtypes cannot hold,
        ShardUnavailableError if the shard's actor dies meanwhile. Cost: one Ray call to the key's
        shard (a round trip), O(depth) there.
        """
        value = self._one("get", key)  # None: absent (values are integers)
        return default if value is None else value

    def __getitem__(self, key):
        """The value of key.

        Raises KeyError if it is absent; ValueError/TypeError for a key (or value) the dtypes cannot
        hold, ShardUnavailableError if the shard's actor dies meanwhile. Cost: one Ray call to the
        key's shard (a round trip), O(depth) there.
        """
        value = self._one("get", key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value):
        """Upserts key.

        Raises ValueError/TypeError for a key (or value) the dtypes cannot hold,
        ShardUnavailableError if the shard's actor dies meanwhile. Cost: one Ray call to the key's
        shard (a round trip), O(depth) there.
        """
        _keys.value_bits(value, self.value_dtype)
        self._one("__setitem__", key, value)

    def insert(self, key, value) -> bool:
        """Adds key; False (and no change) if it is already there.

        Raises ValueError/TypeError for a key (or value) the dtypes cannot hold,
        ShardUnavailableError if the shard's actor dies meanwhile. Cost: one Ray call to the key's
        shard (a round trip), O(depth) there.
        """
        _keys.value_bits(value, self.value_dtype)
        return self._one("insert", key, value)

    def replace(self, key, value) -> bool:
        """Changes the value of an existing key; False if it is absent.

        Raises ValueError/TypeError for a key (or value) the dtypes cannot hold,
        ShardUnavailableError if the shard's actor dies meanwhile. Cost: one Ray call to the key's
        shard (a round trip), O(depth) there.
        """
        _keys.value_bits(value, self.value_dtype)
        return self._one("replace", key, value)

    def delete(self, key) -> bool:
        """Removes key; False if it was absent.

        Raises ValueError/TypeError for a key (or value) the dtypes cannot hold,
        ShardUnavailableError if the shard's actor dies meanwhile. Cost: one Ray call to the key's
        shard (a round trip), O(depth) there.
        """
        return self._one("delete", key)

    def __delitem__(self, key):
        """Removes key.

        Raises KeyError if it is absent; ValueError/TypeError for a key (or value) the dtypes cannot
        hold, ShardUnavailableError if the shard's actor dies meanwhile. Cost: one Ray call to the
        key's shard (a round trip), O(depth) there.
        """
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key):
        """Whether key is present; False for anything the key dtype cannot hold.

        Raises ShardUnavailableError if the shard's actor dies meanwhile. Cost: one Ray call to the
        key's shard (a round trip), O(depth) there.
        """
        try:
            self._key(key)
        except (TypeError, ValueError):
            return False
        return self._one("__contains__", key)

    def __len__(self):
        """The entry count over all shards.  Raises ShardUnavailableError if a shard's actor dies
        meanwhile.  Cost: one call to each shard, all at once."""
        return sum(self._all("__len__"))

    # ---- batch operations -------------------------------------------------------------

    def get_many(self, keys):
        """(values, found) in the caller's order; values are 0 where not found.

        Raises ValueError/TypeError for keys or values the dtypes cannot hold (ValueError for a
        length mismatch), ShardUnavailableError if a shard's actor dies meanwhile (its part may or
        may not be applied). Cost: one Ray call to each shard the keys fall in, all at once, O(m *
        depth) in all for m keys.
        """
        k = self._key_array(keys)
        values, found = np.zeros(k.size, dtype=self.value_dtype), np.zeros(k.size, dtype=bool)
        self._batch("get_many", k, out=(values, found))
        return values, found

    def contains_many(self, keys):
        """A bool array: which keys are present.

        Raises ValueError/TypeError for keys or values the dtypes cannot hold (ValueError for a
        length mismatch), ShardUnavailableError if a shard's actor dies meanwhile (its part may or
        may not be applied). Cost: one Ray call to each shard the keys fall in, all at once, O(m *
        depth) in all for m keys.
        """
        k = self._key_array(keys)
        found = np.zeros(k.size, dtype=bool)
        self._batch("contains_many", k, out=(found,))
        return found

    def put_many(self, keys, values):
        """Upserts a batch; with duplicate keys in the batch the last wins (they share a shard).

        Raises ValueError/TypeError for keys or values the dtypes cannot hold (ValueError for a
        length mismatch), ShardUnavailableError if a shard's actor dies meanwhile (its part may or
        may not be applied). Cost: one Ray call to each shard the keys fall in, all at once, O(m *
        depth) in all for m keys.
        """
        k = self._key_array(keys)
        self._batch("put_many", k, self._value_array(values, k.size))

    def insert_many(self, keys, values):
        """Inserts a batch; a bool array, False where the key existed.

        Raises ValueError/TypeError for keys or values the dtypes cannot hold (ValueError for a
        length mismatch), ShardUnavailableError if a shard's actor dies meanwhile (its part may or
        may not be applied). Cost: one Ray call to each shard the keys fall in, all at once, O(m *
        depth) in all for m keys.
        """
        k = self._key_array(keys)
        inserted = np.zeros(k.size, dtype=bool)
        self._batch("insert_many", k, self._value_array(values, k.size), out=(inserted,))
        return inserted

    def delete_many(self, keys):
        """Deletes a batch; a bool array, True where the key was there.

        Raises ValueError/TypeError for keys or values the dtypes cannot hold (ValueError for a
        length mismatch), ShardUnavailableError if a shard's actor dies meanwhile (its part may or
        may not be applied). Cost: one Ray call to each shard the keys fall in, all at once, O(m *
        depth) in all for m keys.
        """
        k = self._key_array(keys)
        deleted = np.zeros(k.size, dtype=bool)
        self._batch("delete_many", k, out=(deleted,))
        return deleted

    # ---- ordered operations -----------------------------------------------------------

    def _all(self, method, *args):
        """method(*args) on every shard, in key order, retried whole on a stale table."""
        while True:
            t = self._table
            answers = self._get([self._send(i, method, *args) for i in range(len(t))], t.names, method)
            if all(a is not None for a in answers):
                return [a[0] for a in answers]
            self._refresh(stale=True)

    def _empty(self):
        return np.empty(0, dtype=self.key_dtype), np.empty(0, dtype=self.value_dtype)

    def range(self, lo, hi):
        """Entries with lo <= key < hi, ascending, as (keys, values) arrays, across shards.

        Raises TypeError for a bound that is not a number,
        ShardUnavailableError if a shard's actor dies meanwhile.  Cost: one
        call to each shard the range overlaps, all at once, O(log n + k) for k entries."""
        while True:
            t = self._table
            shards = range(t.shard_of(lo), t.shard_of(hi) + 1) if lo < hi else range(0)
            answers = self._get([self._send(i, "range", lo, hi) for i in shards], t.names, "range")
            if all(a is not None for a in answers):
                break
            self._refresh(stale=True)
        if not answers:
            return self._empty()
        return (np.concatenate([a[0][0] for a in answers]), np.concatenate([a[0][1] for a in answers]))

    def scan(self, start, count):
        """The first count entries with key >= start, as (keys, values) arrays, across shards.

        Raises ValueError for a negative count, ShardUnavailableError if a
        shard's actor dies meanwhile.  Cost: one call to each shard read,
        shard after shard from the one owning start, until count entries."""
        if type(count) is not int:
            count = _keys._integral(count, "count")
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        while True:
            t = self._table
            parts, i, at, need = [], t.shard_of(start), start, count
            while need > 0 and i < len(t):
                got = self._get(self._send(i, "scan", at, need), [t.names[i]], "scan")
                if got is None:
                    break
                parts.append(got[0])
                need -= got[0][0].size
                i += 1
                at = t.span(i)[0] if i < len(t) else None
            else:
                if not parts:
                    return self._empty()
                return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            self._refresh(stale=True)

    def irange(self, minimum=None, maximum=None, inclusive=(True, True), reverse=False):
        """A lazy iterator of the keys between minimum and maximum (None: unbounded), across shards.

        inclusive: (include minimum, include maximum), as SortedDict.irange.
        Ascending: read _CHUNK keys per scan() call as the iterator advances;
        reverse=True reads the whole span first (one range() call), then
        walks it backwards.  Raises TypeError for a bound that is not a
        number, ShardUnavailableError if a shard's actor dies meanwhile.
        Cost: O(1) amortized per key ascending; O(k) up front for k keys in
        reverse.
        """
        lo_in, hi_in = inclusive

        def inside(k):
            if minimum is not None and (k < minimum or (k == minimum and not lo_in)):
                return False
            return maximum is None or k < maximum or (k == maximum and hi_in)

        forward = (k for k in self._ascending_until(self._ascending(minimum), maximum) if inside(k))
        return reversed(list(forward)) if reverse else forward

    def _ascending(self, start):
        """Every key >= start (all when None), ascending, read _CHUNK at a time."""
        at = self.min_key() if start is None else start
        last = None
        while at is not None:
            ks, _ = self.scan(at, _CHUNK)
            for k in ks.tolist():
                if last is None or k > last:
                    yield k
            if ks.size < _CHUNK:
                return
            at = last = ks[-1].item()

    @staticmethod
    def _ascending_until(keys, maximum):
        """keys up to the first one past maximum (None: all)."""
        for k in keys:
            if maximum is not None and k > maximum:
                return
            yield k

    def lower_bound(self, key):
        """The smallest key >= key, or None.

        Raises TypeError for a key that is not a number, ShardUnavailableError if a shard's actor
        dies meanwhile. Cost: as scan(key, 1), a call to the key's shard, then to the next ones while they are empty.
        """
        keys, _ = self.scan(key, 1)
        return keys[0].item() if keys.size else None

    def min_key(self):
        """The smallest key, or None when empty.

        Raises ShardUnavailableError if a shard's actor dies meanwhile. Cost: one call to each
        shard, all at once.
        """
        found = [k for k in self._all("min_key") if k is not None]
        return found[0] if found else None

    def max_key(self):
        """The largest key, or None when empty.

        Raises ShardUnavailableError if a shard's actor dies meanwhile. Cost: one call to each
        shard, all at once.
        """
        found = [k for k in self._all("max_key") if k is not None]
        return found[-1] if found else None

    # ---- introspection ----------------------------------------------------------------

    def stats(self) -> dict:
        """Totals (size, memory_bytes, shards, table version) and each shard's stats() with its range.

        Raises ShardUnavailableError if a shard's actor dies meanwhile. Cost: one call to each
        shard, all at once.
        """
        per = self._all("stats")
        t = self._table
        shards = [{"name": t.names[i], "lo": t.span(i)[0], "hi": t.span(i)[1], "epoch": t.epochs[i], **st}
                  for i, st in enumerate(per)]
        return {"size": sum(s["size"] for s in per), "key_dtype": self.key_dtype, "value_dtype": self.value_dtype,
                "memory_bytes": sum(s["memory_bytes"] for s in per), "shard_count": len(per),
                "table_version": t.version, "shards": shards}

    def shard_info(self) -> list:
        """Each shard's range, epoch, process id and durability, in key order (operators, tests).

        Raises ShardUnavailableError if a shard's actor dies meanwhile. Cost: one call to each
        shard, all at once.
        """
        names = self._table.names
        return self._get([self._shard(n).info.remote() for n in names], names, "shard_info")

    def __repr__(self):
        return (f"<nfl.cluster.ShardedIndex {self.name!r} {self.key_dtype}->{self.value_dtype}, "
                f"{len(self._table)} shards>")
