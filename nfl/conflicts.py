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
    """Keys per occupied slot, in slot order, for z sorted ascending."""
    n = z.shape[0]
    counts = np.empty(n, dtype=np.int64)
    if n == 0:
        return counts
    z0 = z[0]
    span = z[n - 1] - z0
    scale = (capacity - 1) / span if span > 0 else 0.0
    m = 0
    last = -1
    for i in range(n):
        p = (z[i] - z0) * scale
        pos = 0 if not p > 0 else (capacity - 1 if p >= capacity - 1 else int(p))
        if pos != last:
            counts[m] = 1
            m += 1
            last = pos
        else:
            counts[m - 1] += 1
    return counts[:m]


def conflict_stats(z, amplification=2.0) -> ConflictStats:
    """Conflict-degree statistics of the linear model over sorted z."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    if z.size == 0:
        return ConflictStats(0, 0.0, 0.0, 1.0)
    capacity = max(int(np.ceil(amplification * z.size)), 1)
    counts = slot_counts(z, capacity)
    return ConflictStats(
        int(counts.max()),
        float(np.percentile(counts, TAIL_PERCENT)),
        float(counts.mean()),
        counts.size / z.size,
    )


def bucket_size(z, amplification=2.0) -> int:
    """AFLI's bucket capacity: the tail conflict degree clamped to 1..6."""
    p99 = conflict_stats(z, amplification).p99
    return int(min(max(np.ceil(p99), 1), 6))
