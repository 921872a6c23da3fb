"""The flow's input feature u = clamp(scale * g(x) + offset, 0, 1), in numpy, for training.

g is the identity ("linear") or the order-preserving integer of x's bits
("log"); the same operations in the same order as native/flow.c, so training
sees the u the compiled transform computes.
"""
import numpy as np

from nfl.flow import layout

_MAGNITUDE = np.int64(0x7FFFFFFFFFFFFFFF)


def ordinal(x: np.ndarray) -> np.ndarray:
    """Order-preserving integer of each double's bits, as doubles (-0.0 -> 0)."""
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    mag = bits & _MAGNITUDE
    return np.where(bits < 0, -mag, mag).astype(np.float64)


def feature(x: np.ndarray, name: str, scale: float, offset: float) -> np.ndarray:
    """u = clamp(scale * g(x) + offset, 0, 1), NaN to 0: the input of the spline."""
    if name not in layout.FEATURES:
        raise ValueError(f"unknown feature {name!r}")
    g = ordinal(x) if name == "log" else np.array(x, dtype=np.float64)
    u = g * float(scale) + float(offset)
    u = np.where(u > 0.0, u, 0.0)
    return np.where(u < 1.0, u, 1.0)
