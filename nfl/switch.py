"""The auto switch: keep the flow only where it lowers tail conflicts and lookup cost.

NFL's rule: measure the tail conflict degree of a linear model over the raw
keys and over the transformed keys, and keep the flow only when it lowers it
by more than 10 %.  The choice also fixes AFLI's bucket size, which comes from
the tail conflict degree of the keys the tree is built on.  The counts are
the C core's (nfl.conflicts): the root model of the tree that gets built.

A second rule, ours, weighs what the flow costs a lookup against what it
saves, in tree levels (about one cache miss each on the batch path).  Past
the root slot a lookup pays a level for each key in a root slot fuller than
a bucket (it lives further down) and the cache lines of the bucket its key
sits in (conflicts.lookup_levels).  The flow pays TRANSFORM_LEVELS for its
own work and up to one level for its tables, in proportion to their size
against TABLE_LEVEL_BYTES (a core's L2 is 512 KiB here).  Calibration, batch
lookups, flow on vs off, with (raw, flow + transform + tables) levels from
this model: 1M lognormal (0.70, 0.27 + 0.25 + 0.01) 1.76x; 5M lognormal
(0.99, 0.27 + 0.25 + 0.01) 1.55x; 1.5M ipv4 (0.70, 0.43 + 0.25 + 0.13)
0.90x; with 1.3 MB of tables, 2M ipv4 0.77x.  The flow is kept only if its
total comes out lower.  A root that takes the pieces model (keys in clusters
far apart; raw skewed keys too) has low tail conflicts by construction and
pays a level for its piece read (conflicts.PIECE_LEVELS): then only the cost
rule decides.
"""
import os
import warnings
from typing import NamedTuple, Optional

import numpy as np

from nfl import conflicts
from nfl.flow import Flow

TAIL_GAIN = 0.10  # the flow must lower tail conflicts by more than this
AUTO_MIN_KEYS = 10_000  # below this, "auto" does not train a flow
TABLE_LEVEL_BYTES = 1 << 20  # flow tables this large cost a lookup about one tree level
TRANSFORM_LEVELS = 0.25  # the transform's own work per lookup (~10 of ~40 ns a level costs)
MODES = ("auto", "on", "off")
ACCEPTED = '"auto", "on", "off", an nfl.Flow, or the path of an existing flow file'
_warned = set()  # warnings given once per process


class FlowChoice(NamedTuple):
    flow: Optional[Flow]
    tail_conflicts_raw: float
    tail_conflicts_flow: Optional[float]
    bucket_size: int
    reason: str  # why the flow is on or off, in words (stats()["flow_reason"])


def check_flow_arg(flow):
    """flow= as given if it is valid: a mode, a Flow or an existing path; else TypeError/ValueError."""
    if isinstance(flow, Flow) or (isinstance(flow, str) and flow in MODES):
        return flow
    if not isinstance(flow, (str, os.PathLike)):
        raise TypeError(f"flow must be {ACCEPTED}; got {flow!r}")
    if not os.path.exists(flow):
        raise ValueError(f"flow must be {ACCEPTED}; got {flow!r}, which is neither a mode nor an existing file")
    return flow


def _warn_once(key, message):
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _flow_for(keys: np.ndarray, flow):
    """(the Flow that flow= names, trained if asked, or None; why not, if None)."""
    if isinstance(flow, Flow):
        return flow, None
    if flow not in MODES:
        return Flow.load(flow), None
    if flow == "auto":
        if keys.size < AUTO_MIN_KEYS:
            return None, f"auto: {keys.size:,} keys, fewer than the {AUTO_MIN_KEYS:,} a flow is trained on"
        try:
            import torch  # noqa: F401  (only to learn whether training can run)
        except ImportError:
            _warn_once("torch", 'flow="auto" trains no flow: PyTorch is not installed (pip install "nfl[train]")')
            return None, "auto: PyTorch is not installed, so no flow was trained"
    return Flow.train(keys, progress=False), None


def table_levels(flow) -> float:
    """What the flow's tables cost a lookup, in tree levels: their share of the cache, at most one."""
    return min(1.0, flow.table_bytes / TABLE_LEVEL_BYTES)


def choose_flow(keys: np.ndarray, flow="auto") -> FlowChoice:
    """Applies flow= ("auto" | "on" | "off" | Flow | path of a flow file) to keys (any order).

    Raises TypeError for another kind of flow=, ValueError for an unknown mode
    or a missing file (nfl.flow.FlowFileError for an unusable one).  Costs a
    pass over the keys per candidate, plus training when asked.
    """
    check_flow_arg(flow)
    raw_slots, raw_pieces = conflicts.root_model(keys)
    raw_counts = conflicts.occupied(raw_slots)
    raw_stats = conflicts.stats_of(raw_counts)
    raw, raw_bucket = raw_stats.p99, conflicts.bucket_for(raw_stats)
    if isinstance(flow, str) and flow == "off":
        return FlowChoice(None, raw, None, raw_bucket, 'flow="off"')
    f, why_not = _flow_for(keys, flow)
    if f is None:
        return FlowChoice(None, raw, None, raw_bucket, why_not)
    flow_slots, flow_pieces = conflicts.root_model(keys, f)
    flow_counts = conflicts.occupied(flow_slots)
    flow_stats = conflicts.stats_of(flow_counts)
    transformed, flow_bucket = flow_stats.p99, conflicts.bucket_for(flow_stats)
    if flow != "auto":
        given = 'flow="on": trained' if flow == "on" else "given" if isinstance(flow, Flow) else f"loaded from {flow}"
        return FlowChoice(f, raw, transformed, flow_bucket, f"{given}, used as asked")
    tails = f"tail conflicts {raw:g} raw, {transformed:g} with the flow"
    if not raw_pieces and not transformed < (1.0 - TAIL_GAIN) * raw:
        return FlowChoice(None, raw, transformed, raw_bucket,
                          f"auto: off, {tails}: not lower by more than {TAIL_GAIN:.0%}")
    raw_levels = conflicts.lookup_levels(raw_counts, raw_bucket) + conflicts.PIECE_LEVELS * raw_pieces
    flow_levels = (conflicts.lookup_levels(flow_counts, flow_bucket) + conflicts.PIECE_LEVELS * flow_pieces
                   + TRANSFORM_LEVELS + table_levels(f))
    costs = f"lookup cost {raw_levels:.2f} levels raw, {flow_levels:.2f} with the flow (transform and tables included)"
    if not flow_levels < raw_levels:
        return FlowChoice(None, raw, transformed, raw_bucket, f"auto: off, {tails}, but {costs}")
    return FlowChoice(f, raw, transformed, flow_bucket, f"auto: on, {tails}; {costs}")
