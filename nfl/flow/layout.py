"""The flat parameter vector of a flow: what native/flow.c's nfl_flow_create reads.

Layout version 1 (float64): magic, family, version, feature, scale, offset,
K (bins), the K+1 knots, the K bin masses.  flow.c's header comment is the
authority; this module mirrors its checks so that bad vectors fail with a
reason in Python.
"""
from typing import NamedTuple

import numpy as np

from nfl import _boundary

MAGIC = 1313229894.0  # "NFLF"
FAMILY_CODES = {"spline": 1.0}
VERSION = 1.0
FEATURES = ("linear", "log")  # position = code in the vector
HEADER = 7
MAX_BINS = _boundary.FLOW_MAX_BINS  # native/flow.c's limit


class Spline(NamedTuple):
    """A spline flow in readable form.

    u = clamp(scale * g(x) + offset, 0, 1), g = identity ("linear") or the
    order-preserving integer of x's bits ("log"); then z = the linear spline
    through (knots[j], masses[:j].sum() / masses.sum()).
    """

    feature: str
    scale: float
    offset: float
    knots: np.ndarray  # K + 1 increasing values, 0 first and 1 last
    masses: np.ndarray  # K non-negative bin masses


def pack(spline: Spline) -> np.ndarray:
    """The flat vector of a spline flow (validated)."""
    head = [MAGIC, FAMILY_CODES["spline"], VERSION, float(FEATURES.index(spline.feature)),
            float(spline.scale), float(spline.offset), float(len(spline.masses))]
    parts = [np.array(head), spline.knots, spline.masses]
    return check(np.concatenate([np.asarray(a, dtype=np.float64) for a in parts]))


def unpack(params) -> Spline:
    """The readable form of a flat vector; ValueError if it is malformed."""
    p = check(params)
    k = int(p[6])
    knots = p[HEADER:HEADER + k + 1].copy()
    masses = p[HEADER + k + 1:].copy()
    return Spline(FEATURES[int(p[3])], float(p[4]), float(p[5]), knots, masses)


def check(params) -> np.ndarray:
    """The vector as float64 if nfl_flow_create accepts it, else ValueError saying why."""
    p = np.ascontiguousarray(params, dtype=np.float64)
    if p.ndim != 1 or p.size < HEADER:
        raise ValueError("flow parameters: too short")
    if p[0] != MAGIC or p[2] != VERSION:
        raise ValueError("flow parameters: bad magic or layout version")
    if p[1] not in FAMILY_CODES.values():
        raise ValueError(f"flow parameters: unknown family code {p[1]!r}")
    if p[3] not in (0.0, 1.0):
        raise ValueError(f"flow parameters: unknown feature code {p[3]!r}")
    if not (p[4] > 0 and np.isfinite(p[4]) and np.isfinite(p[5])):
        raise ValueError("flow parameters: feature scale must be finite and > 0, offset finite")
    if not (1 <= p[6] <= MAX_BINS and p[6] == np.floor(p[6])):
        raise ValueError(f"flow parameters: bin count must be an integer in 1..{MAX_BINS}")
    k = int(p[6])
    if p.size != HEADER + 2 * k + 1:
        raise ValueError("flow parameters: length does not match the bin count")
    knots, masses = p[HEADER:HEADER + k + 1], p[HEADER + k + 1:]
    if knots[0] != 0.0 or knots[-1] != 1.0 or not np.all(knots[1:] > knots[:-1]):
        raise ValueError("flow parameters: knots must increase strictly from 0 to 1")
    if not (np.all(np.isfinite(masses)) and np.all(masses >= 0)):
        raise ValueError("flow parameters: masses must be finite and >= 0")
    total = float(np.sum(masses))
    if not (total > 0 and np.isfinite(total) and np.isfinite(1.0 / total)):
        raise ValueError("flow parameters: masses need a positive finite total")
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        cum = np.minimum(np.concatenate([[0.0], np.cumsum(masses)]) / total, 1.0)
        if not np.all(np.isfinite(np.diff(cum) / np.diff(knots))):
            raise ValueError("flow parameters: a bin is too steep (infinite slope)")
    return p
