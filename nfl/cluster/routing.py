"""The routing table: which shard owns which key range, at which version.

Shard i owns the keys k with bounds[i-1] <= k < bounds[i] (the first shard
from the smallest key, the last to the largest).  Every shard range carries
an epoch, the table version at which it was last set; a request names the
epoch its caller routed by, and a shard whose range has changed since
answers "stale" instead of running it, so the caller fetches the new table
and retries.  That is what makes a split or a merge safe while reads and
writes continue: a request is run by the shard that owns its keys at that
moment, or not at all.

Pure numpy; no Ray here.
"""
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Table:
    """An immutable routing table.

    version: bumped by every split or merge; names: the shard actors' names
    in key order; epochs: each shard's range epoch; bounds: the N-1 lower
    bounds of shards 1..N-1, strictly ascending, in the key dtype.
    """

    version: int
    names: tuple
    epochs: tuple
    bounds: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "_bound_list", self.bounds.tolist())

    def __len__(self):
        return len(self.names)

    def shard_of(self, key) -> int:
        """The shard owning one key (a Python int or float of the key dtype)."""
        return bisect_right(self._bound_list, key)

    def span(self, i):
        """(lo, hi) of shard i as Python keys; None where unbounded."""
        lo = self._bound_list[i - 1] if i > 0 else None
        hi = self._bound_list[i] if i < len(self._bound_list) else None
        return lo, hi

    def partition(self, keys: np.ndarray):
        """Splits a key array by owner with one vectorised searchsorted.

        Returns [(shard, positions)]: for each shard with keys, the positions
        in `keys` it owns, ascending (so a shard sees its keys in the caller's
        order, and duplicate-key semantics such as "last wins" hold).  Cost:
        O(n log N) search plus an O(n) stable radix sort of the shard ids.
        """
        n = len(self.names)
        if n == 1 or keys.size == 0:
            return [(0, np.arange(keys.size))] if keys.size else []
        owner = np.searchsorted(self.bounds, keys, side="right").astype(np.uint16 if n > 255 else np.uint8)
        first = owner[0]
        if (owner == first).all():
            return [(int(first), np.arange(keys.size))]
        order = np.argsort(owner, kind="stable")  # radix sort on 8/16-bit ids
        ends = np.cumsum(np.bincount(owner, minlength=n))
        starts = ends - np.bincount(owner, minlength=n)
        return [(i, order[starts[i]:ends[i]]) for i in range(n) if ends[i] > starts[i]]

    def with_split(self, i, bound, new_name, epoch):
        """The next table: shard i cut at bound, new_name owning [bound, old hi)."""
        return Table(self.version + 1,
                     self.names[:i + 1] + (new_name,) + self.names[i + 1:],
                     self.epochs[:i] + (epoch, epoch) + self.epochs[i + 1:],
                     np.insert(self.bounds, i, bound))

    def with_merge(self, i, epoch):
        """The next table: shard i+1's range joined to shard i's."""
        return Table(self.version + 1,
                     self.names[:i + 1] + self.names[i + 2:],
                     self.epochs[:i] + (epoch,) + self.epochs[i + 2:],
                     np.delete(self.bounds, i))


def flow_bounds(keys: np.ndarray, flow, shards: int):
    """The N-1 cuts of the flow's CDF at 1/N, 2/N, ...: for each, the smallest key the flow maps past it.

    A trained flow maps keys near-uniformly into [0, 1], so equal slices of
    its output hold about equal entry counts.  Returns the bounds, strictly
    ascending, or None when a slice holds no key (the flow is too coarse for
    this many shards).  Cost: one transform of the keys plus O(n).
    """
    z = flow.transform(keys)
    owner = np.minimum((z * shards).astype(np.int64), shards - 1)
    counts = np.bincount(owner, minlength=shards)
    if (counts == 0).any():
        return None
    firsts = np.full(shards, keys.max(), dtype=keys.dtype)
    np.minimum.at(firsts, owner, keys)  # z is monotone in the key: slice i starts at its smallest key
    return firsts[1:]


def quantile_bounds(keys: np.ndarray, shards: int) -> np.ndarray:
    """The N-1 keys that cut unique keys (any order) into N ranges of equal counts.

    One np.partition at the cut positions: O(n), exact.
    """
    n = keys.size
    cuts = [n * i // shards for i in range(1, shards)]
    if not cuts:
        return keys[:0].copy()
    return np.partition(keys, cuts)[cuts]
