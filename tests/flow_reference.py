"""Numba reference of the flow transform: the test oracle of the C code (tests only).

Same algorithm as native/flow.c, same operations in the same order (see the
comment there for why every step is monotone in floating point), so the two
agree to the last bit in practice and within 1e-12 relative by test.
"""
import numpy as np
from numba import njit

from nfl.flow import layout


@njit(cache=True)
def ordinal(x):
    """Order-preserving integer of each double's bits, as doubles (-0.0 -> 0)."""
    bits = x.view(np.int64)
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        b = bits[i]
        mag = b & 0x7FFFFFFFFFFFFFFF
        out[i] = np.float64(-mag if b < 0 else mag)
    return out


@njit(cache=True)
def _unit(v):
    v = v if v > 0.0 else 0.0
    return v if v < 1.0 else 1.0


@njit(cache=True)
def _feature(x, code, scale, offset):
    g = ordinal(x) if code == 1 else x.copy()
    for i in range(g.shape[0]):
        g[i] = _unit(g[i] * scale + offset)
    return g


@njit(cache=True)
def _cells_for(k):
    cells = 1
    while cells < 2 * k and cells < (1 << 21):
        cells <<= 1
    return cells


@njit(cache=True)
def _advance(e, k, j, v):
    while j + 1 < k and e[j + 1] <= v:
        j += 1
    return j


@njit(cache=True)
def prepare_bins(e, m):
    """(edges padded with +inf, (Y_j, slope_j) pairs, radix table, first lifting step), as flow.c builds them."""
    k = m.shape[0]
    total = 0.0
    for j in range(k):
        total = total + m[j]
    inv = 1.0 / total
    coef = np.zeros(2 * (k + 1))
    run = 0.0
    for j in range(k + 1):
        y = run * inv
        coef[2 * j] = y if y < 1.0 else 1.0
        if j < k:
            run = run + m[j]
    for j in range(k):
        coef[2 * j + 1] = (coef[2 * j + 2] - coef[2 * j]) / (e[j + 1] - e[j])
    cells = _cells_for(k)
    inv_cells = 1.0 / np.float64(cells)
    first = np.empty(cells, dtype=np.int64)
    lo = 0
    hi = 0
    widest = 0
    for r in range(cells):
        lo = _advance(e, k, lo, np.float64(r) * inv_cells)
        hi = _advance(e, k, hi if hi > lo else lo, np.float64(r + 1) * inv_cells)
        first[r] = lo
        widest = hi - lo if hi - lo > widest else widest
    step = 1
    while step <= widest:
        step <<= 1
    step >>= 1
    edge = np.full(k + 1 + 2 * step, np.inf)
    edge[:k + 1] = e
    return edge, coef, first, step


@njit(cache=True)
def _apply_bins(edge, coef, first, step, k, u):
    cells = first.shape[0]
    fc = np.float64(cells)
    for i in range(u.shape[0]):
        r = np.int64(u[i] * fc)
        j = first[r if r < cells else cells - 1]
        s = step
        while s > 0:
            if edge[j + s] <= u[i]:
                j += s
            s >>= 1
        b = j if j < k else k - 1
        y = coef[2 * b] + (u[i] - edge[b]) * coef[2 * b + 1]
        y1 = coef[2 * b + 2]
        u[i] = y if y < y1 else y1


def feature(x, name, scale, offset) -> np.ndarray:
    """u = clamp(scale * g(x) + offset, 0, 1): the input of the spline."""
    return _feature(np.ascontiguousarray(x, dtype=np.float64), layout.FEATURES.index(name), float(scale), float(offset))


def apply_spline(knots, masses, u) -> np.ndarray:
    """The linear spline through the knots with the given bin masses, applied to u in [0, 1]."""
    m = np.ascontiguousarray(masses, dtype=np.float64)
    edge, coef, first, step = prepare_bins(np.ascontiguousarray(knots, dtype=np.float64), m)
    out = np.array(u, dtype=np.float64)
    _apply_bins(edge, coef, first, step, m.size, out)
    return out


def transform_numba(params, x) -> np.ndarray:
    """z = f(x) for a flat parameter vector, exactly as nfl_flow_transform computes it."""
    spline = layout.unpack(params)
    return apply_spline(spline.knots, spline.masses, feature(x, spline.feature, spline.scale, spline.offset))
