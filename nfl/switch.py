"""The auto switch: keep the flow only where it lowers tail conflicts.

NFL's rule: measure the tail conflict degree of a linear model over the raw
keys and over the transformed keys, and keep the flow only when it lowers it
by more than 10 %.  The choice also fixes AFLI's bucket size, which comes from
the tail conflict degree of the keys the tree is built on.
"""
import os
from typing import NamedTuple, Optional

import numpy as np

from nfl import conflicts

TAIL_GAIN = 0.10  # the flow must lower tail conflicts by more than this
AUTO_MIN_KEYS = 10_000  # below this, "auto" does not train a flow


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


def choose_flow(keys: np.ndarray, flow="auto") -> FlowChoice:
    """Applies flow= ("auto" | "on" | "off" | Flow | path) to keys (any order)."""
    if not (isinstance(flow, (str, os.PathLike)) or type(flow).__name__ == "Flow"):
        raise TypeError(f'flow must be "auto", "on", "off", a Flow or a path; got {flow!r}')
    raw_stats = conflicts.conflict_stats(_numbers(keys))
    raw, raw_bucket = raw_stats.p99, conflicts.bucket_for(raw_stats)
    if isinstance(flow, str) and flow == "off":
        return FlowChoice(None, raw, None, raw_bucket)
    f = _flow_for(keys, flow)
    if f is None:
        return FlowChoice(None, raw, None, raw_bucket)
    z = f.transform(keys)
    flow_stats = conflicts.conflict_stats(z)
    transformed = flow_stats.p99
    keep = flow != "auto" or transformed < (1.0 - TAIL_GAIN) * raw
    if not keep:
        return FlowChoice(None, raw, transformed, raw_bucket)
    return FlowChoice(f, raw, transformed, conflicts.bucket_for(flow_stats))
