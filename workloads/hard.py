"""Hard key sets and insert orders: the inputs that make a learned index degenerate.

Each one defeats a different part of a learned index (issue 17):

- ``dense_runs``: runs of consecutive integer ids (geometric lengths, mean
  ``mean_run``) at uniform random starts over the whole uint64 range, the
  shape of SOSD's ``fb`` (ids handed out in blocks).  A double of such a key
  cannot tell apart ids closer than 2048, and a line over the whole range
  puts each run in one slot.
- ``wide_floats``: float64 keys +-10^u, u uniform in [-decades, decades]:
  one line over the values puts nearly every key in the first slot.
- ``outside``: keys beyond the loaded range (above the maximum or below the
  minimum), in random order: a flow trained on the loaded keys maps them all
  to one clamped z.
- ``descending``: the keys in descending order, each insert below all others.
"""

from __future__ import annotations

import numpy as np

U64_MAX = 2**64 - 1


def dense_runs(rng: np.random.Generator, m: int, mean_run: int = 256) -> np.ndarray:
    """About m uint64 keys (unsorted, possibly repeated where runs overlap) in runs of consecutive ids."""
    lengths = rng.geometric(1.0 / mean_run, size=max(1, 2 * m // mean_run + 1))
    lengths = lengths[: max(1, int(np.searchsorted(np.cumsum(lengths), m)) + 1)]
    starts = rng.integers(0, 2**64 - int(lengths.max()), size=len(lengths), dtype=np.uint64, endpoint=True)
    run = np.repeat(np.arange(len(lengths)), lengths)
    within = np.arange(len(run), dtype=np.uint64) - np.repeat(np.cumsum(lengths) - lengths, lengths).astype(np.uint64)
    return (starts[run] + within)[:m]


def wide_floats(rng: np.random.Generator, m: int, decades: float = 300.0) -> np.ndarray:
    """m float64 keys (unsorted) +-10^u, u uniform in [-decades, decades], both signs."""
    signs = rng.choice(np.array([-1.0, 1.0]), size=m)
    return signs * 10.0 ** rng.uniform(-decades, decades, size=m)


def outside(keys: np.ndarray, m: int, side: str, rng: np.random.Generator) -> np.ndarray:
    """m distinct uint64 keys beyond sorted ``keys``, in random order.

    side "above": uniform in (max, max + 3 * (max - min)] (capped at 2^64 - 1);
    "below": uniform in [0, min).  ValueError if that range holds fewer than
    2 * m keys or side is neither.
    """
    lo, hi = int(keys[0]), int(keys[-1])
    if side == "above":
        first, last = hi + 1, min(U64_MAX, hi + 3 * (hi - lo))
    elif side == "below":
        first, last = 0, lo - 1
    else:
        raise ValueError(f'side must be "above" or "below", not {side!r}')
    if last - first + 1 < 2 * m:
        raise ValueError(f"only {max(0, last - first + 1):,} keys {side} the range, need {2 * m:,}")
    out = np.unique(rng.integers(first, last, size=m + m // 4 + 16, dtype=np.uint64, endpoint=True))
    while len(out) < m:
        out = np.unique(np.concatenate([out, rng.integers(first, last, size=m, dtype=np.uint64, endpoint=True)]))
    return rng.permutation(out)[:m]


def descending(keys: np.ndarray) -> np.ndarray:
    """The keys sorted in descending order (an insert order)."""
    return np.sort(keys)[::-1].copy()
