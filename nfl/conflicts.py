"""Conflict-degree analysis: how many keys a linear model maps to one slot.

The conflict degree of a slot is the number of keys whose predicted slot it
is; the tail conflict degree is its 99th percentile over occupied slots.  AFLI
sizes its buckets from it and the auto switch compares it with and without the
flow.  The linear model is the one an AFLI model node fits: it maps the
smallest z to slot 0 and the largest to the last of amplification * n slots.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

TAIL_PERCENT = 99.0


class ConflictStats(NamedTuple):
    """Conflict degrees of one linear model over a key set."""

    max: int
    p99: float
    mean: float
    distinct_fraction: float  # occupied slots / keys: 1.0 means no conflicts


@njit(cache=True)
def slot_counts(z, capacity):
    """Keys per occupied slot, in slot order; z in any order (no sort: O(n))."""
    n = z.shape[0]
    per_slot = np.zeros(capacity, dtype=np.int32)
    if n == 0:
        return per_slot[:0].astype(np.int64)
    z0, z1 = z[0], z[0]
    for i in range(n):
        z0 = min(z0, z[i])
        z1 = max(z1, z[i])
    span = z1 - z0
    scale = (capacity - 1) / span if span > 0 else 0.0
    for i in range(n):
        p = (z[i] - z0) * scale
        pos = 0 if not p > 0 else (capacity - 1 if p >= capacity - 1 else int(p))
        per_slot[pos] += 1
    return per_slot[per_slot > 0].astype(np.int64)


def model_counts(z, amplification=2.0) -> np.ndarray:
    """Keys per occupied slot of the linear model over z (any order) on amplification * n slots."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    return slot_counts(z, max(int(np.ceil(amplification * z.size)), 1))


def stats_of(counts: np.ndarray) -> ConflictStats:
    """Conflict-degree statistics from model_counts."""
    if counts.size == 0:
        return ConflictStats(0, 0.0, 0.0, 1.0)
    return ConflictStats(
        int(counts.max()),
        float(np.percentile(counts, TAIL_PERCENT)),
        float(counts.mean()),
        counts.size / counts.sum(),
    )


def conflict_stats(z, amplification=2.0) -> ConflictStats:
    """Conflict-degree statistics of the linear model over z (any order)."""
    return stats_of(model_counts(z, amplification))


def bucket_for(stats: ConflictStats) -> int:
    """AFLI's bucket capacity: the tail conflict degree clamped to 1..6."""
    return int(min(max(np.ceil(stats.p99), 1), 6))


def bucket_size(z, amplification=2.0) -> int:
    """The bucket capacity for a tree over z."""
    return bucket_for(conflict_stats(z, amplification))
