"""The auto switch: keep the flow only where it lowers tail conflicts and lookup cost.

NFL's rule: measure the tail conflict degree of a linear model over the raw
keys and over the transformed keys, and keep the flow only when it lowers it
by more than 10 %.  The choice also fixes AFLI's bucket size, which comes from
the tail conflict degree of the keys the tree is built on.

A second rule, ours, weighs what the flow costs a lookup against what it
saves, in tree levels (about one cache miss each on the batch path).  Past
the root slot a lookup pays a level for each key in a root slot fuller than
a bucket (it lives further down) and the cache lines of the bucket its key
sits in (bucket_lines).  The flow pays TRANSFORM_LEVELS for its own work and
up to one level for its tables, in proportion to their size against
TABLE_LEVEL_BYTES (a core's L2 is 512 KiB here).  Calibration, batch
lookups, flow on vs off, with (raw, flow + transform + tables) levels from
this model: 1M lognormal (0.70, 0.27 + 0.25 + 0.01) 1.76x; 5M lognormal
(0.99, 0.27 + 0.25 + 0.01) 1.55x; 1.5M ipv4 (0.70, 0.43 + 0.25 + 0.13)
0.90x; earlier, with 1.3 MB of tables, 2M ipv4 0.77x.  The flow is kept
only if its total comes out lower.
"""
import os
from typing import NamedTuple, Optional

import numpy as np

from nfl import conflicts

TAIL_GAIN = 0.10  # the flow must lower tail conflicts by more than this
AUTO_MIN_KEYS = 10_000  # below this, "auto" does not train a flow
TABLE_LEVEL_BYTES = 1 << 20  # flow tables this large cost a lookup about one tree level
TRANSFORM_LEVELS = 0.25  # the transform's own work per lookup (~10 of ~40 ns a level costs)


class FlowChoice(NamedTuple):
    flow: Optional[object]  # nfl.Flow or None
    tail_conflicts_raw: float
    tail_conflicts_flow: Optional[float]
    bucket_size: int


def _numbers(keys: np.ndarray) -> np.ndarray:
    """The keys' numeric values as doubles: what the flow and models see."""
    return keys.astype(np.float64)


def _flow_for(keys: np.ndarray, flow):
    """The Flow that flow= names, trained if asked; None if auto cannot train."""
    from nfl.flow import Flow

    if isinstance(flow, Flow):
        return flow
    if isinstance(flow, (str, os.PathLike)) and flow not in ("auto", "on"):
        return Flow.load(flow)
    if flow == "auto":
        if keys.size < AUTO_MIN_KEYS:
            return None
        try:
            import torch  # noqa: F401  (only to learn whether training can run)
        except ImportError:
            return None
    return Flow.train(keys, progress=False)


def over_full_share(counts: np.ndarray, bucket: int) -> float:
    """Share of the keys in slots holding more than a bucket (counts: conflicts.model_counts)."""
    return float(counts[counts > bucket].sum()) / max(int(counts.sum()), 1)


def _bucket_lines(counts: np.ndarray, bucket: int) -> float:
    """Cache lines a lookup reads in the bucket of its key, over all keys (a bucket is 8 + 16 B a key)."""
    held = counts[(counts >= 2) & (counts <= bucket)]
    return float((held * (8 + 16 * held) / 64).sum()) / max(int(counts.sum()), 1)


def levels_below_root(z: np.ndarray, bucket: int) -> float:
    """Fraction of keys in root slots holding more than a bucket: they live one level down or more."""
    return over_full_share(conflicts.model_counts(z), bucket)


def bucket_lines(z: np.ndarray, bucket: int) -> float:
    """Cache lines a lookup reads in the bucket of its key, over all keys."""
    return _bucket_lines(conflicts.model_counts(z), bucket)


def lookup_levels(z: np.ndarray, bucket: int) -> float:
    """What a lookup costs past the root slot, in tree levels: deeper keys and bucket lines."""
    counts = conflicts.model_counts(z)
    return over_full_share(counts, bucket) + _bucket_lines(counts, bucket)


def table_levels(flow) -> float:
    """What the flow's tables cost a lookup, in tree levels: their share of the cache, at most one."""
    return min(1.0, flow.table_bytes / TABLE_LEVEL_BYTES)


def worth_it(raw_z, raw_bucket, flow_z, flow_bucket, flow_levels) -> bool:
    """The flow lowers what a lookup costs, its transform and its tables (flow_levels) included."""
    return lookup_levels(flow_z, flow_bucket) + TRANSFORM_LEVELS + flow_levels < lookup_levels(raw_z, raw_bucket)


def choose_flow(keys: np.ndarray, flow="auto") -> FlowChoice:
    """Applies flow= ("auto" | "on" | "off" | Flow | path) to keys (any order)."""
    if not (isinstance(flow, (str, os.PathLike)) or type(flow).__name__ == "Flow"):
        raise TypeError(f'flow must be "auto", "on", "off", a Flow or a path; got {flow!r}')
    raw_z = _numbers(keys)
    raw_stats = conflicts.conflict_stats(raw_z)
    raw, raw_bucket = raw_stats.p99, conflicts.bucket_for(raw_stats)
    if isinstance(flow, str) and flow == "off":
        return FlowChoice(None, raw, None, raw_bucket)
    f = _flow_for(keys, flow)
    if f is None:
        return FlowChoice(None, raw, None, raw_bucket)
    z = f.transform(keys)
    flow_stats = conflicts.conflict_stats(z)
    transformed, flow_bucket = flow_stats.p99, conflicts.bucket_for(flow_stats)
    keep = flow != "auto" or (transformed < (1.0 - TAIL_GAIN) * raw
                              and worth_it(raw_z, raw_bucket, z, flow_bucket, table_levels(f)))
    if not keep:
        return FlowChoice(None, raw, transformed, raw_bucket)
    return FlowChoice(f, raw, transformed, flow_bucket)
