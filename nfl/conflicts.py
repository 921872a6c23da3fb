"""Conflict-degree statistics over the slot counts the C core returns.

The conflict degree of a slot is the number of keys the linear model of a
model node puts in it; the tail conflict degree is its 99th percentile over
occupied slots.  AFLI sizes its buckets from it and the auto switch compares
it with and without the flow.  The counts come from the C core
(nfl_slot_counts): it fits exactly the model the tree's build fits, so what
is judged here is the root of the tree that gets built.  This module keeps
only statistics over those counts.
"""
import math
from typing import NamedTuple

import numpy as np

from nfl import _boundary, _keys

TAIL_PERCENT = 99.0
MAX_BUCKET = _boundary.MAX_BUCKET  # a bucket's entries, at most (the C core's limit)
ENTRY_BYTES, BUCKET_HEADER_BYTES, CACHE_LINE = 16, 8, 64  # afli_entry, afli_bucket's header
PIECE_LEVELS = 1.0  # a pieces model's table read: about one cache miss, as a level costs


class ConflictStats(NamedTuple):
    """Conflict degrees of one linear model over a key set."""

    max: int
    p99: float
    mean: float
    distinct_fraction: float  # occupied slots / keys: 1.0 means no conflicts


def _raw_keys(keys) -> np.ndarray:
    """keys as one of the index's key dtypes (other numbers as float64), contiguous."""
    keys = np.asarray(keys)
    if keys.dtype.name not in _keys.KEY_DTYPES:
        keys = keys.astype(np.float64)
    return np.ascontiguousarray(keys)


def root_model(keys, flow=None, amplification=None) -> tuple:
    """(per_slot, pieces): the slot counts and whether the C core fits the pieces model.

    pieces: keys in clusters far apart, each piece of the key range a line of
    its own; a lookup then reads the key's piece before its slot (PIECE_LEVELS).
    """
    return _slot_counts(keys, flow, amplification)


def per_slot(keys, flow=None, amplification=None) -> np.ndarray:
    """Keys in each slot (empty ones too) of the model node the C core fits over keys.

    keys: a 1-D array of keys (uint64, int64 or float64; other numbers are
    taken as float64), any order; flow: an nfl.Flow, its compiled transform
    (nfl.flow.compiled.Compiled) or None; amplification:
    slots per key, None for the tree's own.  O(n) time, 4 bytes per slot.
    """
    return _slot_counts(keys, flow, amplification)[0]


def _slot_counts(keys, flow, amplification):
    """(per_slot, pieces) from the C core (nfl._boundary.slot_counts); MemoryError out of memory."""
    handle = None if flow is None else getattr(flow, "compiled", flow).handle
    return _boundary.slot_counts(_raw_keys(keys), handle, amplification or 0.0)


def occupied(counts: np.ndarray) -> np.ndarray:
    """Keys per occupied slot, in slot order (int64): counts without the empty slots."""
    return counts[counts > 0].astype(np.int64)


def model_counts(keys, flow=None, amplification=None) -> np.ndarray:
    """Keys per occupied slot, in slot order (int64): per_slot without the empty slots."""
    return occupied(per_slot(keys, flow, amplification))


def stats_of(counts: np.ndarray) -> ConflictStats:
    """Conflict-degree statistics from model_counts."""
    if counts.size == 0:
        return ConflictStats(0, 0.0, 0.0, 1.0)
    return ConflictStats(
        int(counts.max()),
        tail_degree(counts),
        float(counts.mean()),
        counts.size / counts.sum(),
    )


def tail_degree(counts: np.ndarray) -> float:
    """The TAIL_PERCENT percentile of counts (int64, not empty), as np.percentile's default (linear) method.

    Computed from two order statistics (np.partition): np.percentile
    interpolates through np.unique, which imports numpy.ma (30-40 ms), a cost
    a process's first bulk_load would otherwise pay.  O(len(counts)).
    """
    last = counts.size - 1
    at = last * (TAIL_PERCENT / 100)
    lo = min(math.floor(at), last)
    hi = min(lo + 1, last)
    part = np.partition(counts, (lo, hi))
    a, b = int(part[lo]), int(part[hi])
    t = at - lo
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t)


def conflict_stats(keys, flow=None, amplification=None) -> ConflictStats:
    """Conflict-degree statistics of the model node over keys (see per_slot)."""
    return stats_of(model_counts(keys, flow, amplification))


def bucket_for(stats: ConflictStats) -> int:
    """AFLI's bucket capacity: the tail conflict degree clamped to 1..MAX_BUCKET."""
    return int(min(max(np.ceil(stats.p99), 1), MAX_BUCKET))


def over_full_share(counts: np.ndarray, bucket: int) -> float:
    """Share of the keys in slots holding more than a bucket: they live a level down or more."""
    return float(counts[counts > bucket].sum()) / max(int(counts.sum()), 1)


def bucket_lines(counts: np.ndarray, bucket: int) -> float:
    """Cache lines a lookup reads in the bucket of its key, over all keys (counts: model_counts)."""
    held = counts[(counts >= 2) & (counts <= bucket)]
    lines = held * (BUCKET_HEADER_BYTES + ENTRY_BYTES * held) / CACHE_LINE
    return float(lines.sum()) / max(int(counts.sum()), 1)


def lookup_levels(counts: np.ndarray, bucket: int) -> float:
    """What a lookup costs past the root slot, in tree levels: deeper keys and bucket lines."""
    return over_full_share(counts, bucket) + bucket_lines(counts, bucket)
