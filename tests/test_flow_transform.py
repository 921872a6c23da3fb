"""The compiled flow transform: exact monotonicity, finiteness, agreement with numba, validation."""
import math
import struct
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flow_reference import feature as feature_numba, prepare_bins, transform_numba
from nfl.flow import Flow, features, layout

EXTREMES = [math.inf, -math.inf, 1.7976931348623157e308, -1.7976931348623157e308, 0.0, -0.0,
            5e-324, -5e-324, 2.2250738585072014e-308, -2.2250738585072014e-308, 1.0, -1.0,
            2.0**53, 2.0**63, 2.0**64, -(2.0**63)]


def _knots(rng, style, k):
    if style == "uniform":
        inner = rng.random(k - 1)
    elif style == "clustered":  # groups of knots a few ulps or 1e-12 apart
        base = rng.random(max(1, (k - 1) // 4))
        inner = np.concatenate([b + np.arange(4) * rng.choice([1e-15, 1e-12, 1e-6]) for b in base])[:k - 1]
    else:  # ulp-adjacent knots near 0 and 1 and in the middle
        starts = rng.choice([1e-300, 0.5, 1.0 - 2**-40], size=max(1, (k - 1) // 3))
        inner = np.concatenate([np.nextafter(s, 2.0) * (1 + np.arange(3) * 2**-52) for s in starts])[:k - 1]
    inner = np.unique(inner[(inner > 0) & (inner < 1)])
    return np.concatenate([[0.0], inner, [1.0]])


def _masses(rng, style, k):
    if style == "uniform":
        return rng.random(k) + 1e-3
    if style == "sparse":  # mostly empty bins
        return rng.random(k) * (rng.random(k) < 0.2) + np.eye(1, k, rng.integers(k)).ravel()
    return 10.0 ** rng.uniform(-300, 300, k) / k  # wildly different magnitudes


def _feature_range(rng, feature, style):
    """(scale, offset) of a random feature range: ordinary, astronomically wide, or tiny."""
    if feature == "log":
        lo, hi = np.sort(rng.integers(-(2**63) + 1, 2**63 - 1, size=2).astype(np.float64))
    elif style == "wide":
        lo, hi = -1.7e308, 1.7e308
    elif style == "tiny":
        lo = rng.uniform(-1e18, 1e18)
        hi = lo + abs(lo) * 1e-12 + 1e-300
    else:
        lo, hi = np.sort(rng.normal(0, 1e12, size=2))
    scale = 0.5 / (0.5 * hi - 0.5 * lo)
    return scale, -lo * scale


@st.composite
def spline_params(draw):
    """A random valid flat parameter vector (the generator may also produce invalid ones: assumed away)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    feature = draw(st.sampled_from(layout.FEATURES))
    k = draw(st.integers(1, 48))
    knots = _knots(rng, draw(st.sampled_from(["uniform", "clustered", "ulps"])), k)
    masses = _masses(rng, draw(st.sampled_from(["uniform", "sparse", "extreme"])), knots.size - 1)
    scale, offset = _feature_range(rng, feature, draw(st.sampled_from(["plain", "wide", "tiny"])))
    assume(np.isfinite(scale) and scale > 0 and np.isfinite(offset))
    spline = layout.Spline(feature, scale, offset, knots, masses)
    try:
        return layout.pack(spline)
    except ValueError:
        assume(False)


def _from_ordinal(g):
    """The double whose order-preserving integer is g (inverse of the log feature's g)."""
    i = int(max(min(g, 2**63 - 2**11), -(2**63) + 2**11))
    bits = i if i >= 0 else (-i) | (1 << 63)
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def keys_for(params, rng):
    """Sorted probe keys: extremes, random bit patterns, and the keys at every knot +- a few ulps."""
    spline = layout.unpack(params)
    bits = rng.integers(0, 2**64, size=400, dtype=np.uint64, endpoint=False)
    random_doubles = bits.view(np.float64)
    near = []
    for e in spline.knots:
        g = (e - spline.offset) / spline.scale
        x = g if spline.feature == "linear" else _from_ordinal(g)
        if math.isfinite(x):
            near.append(x)
            for direction in (math.inf, -math.inf):
                y = x
                for _ in range(3):
                    y = math.nextafter(y, direction)
                    near.append(y)
    x = np.concatenate([random_doubles, np.array(EXTREMES), np.array(near, dtype=np.float64)])
    return np.sort(x[~np.isnan(x)])


def check_monotone(transform, params, seed):
    x = keys_for(params, np.random.default_rng(seed))
    z = transform(params, x)
    assert np.all(np.isfinite(z)) and z.min() >= 0.0 and z.max() <= 1.0
    bad = np.flatnonzero(z[1:] < z[:-1])
    assert bad.size == 0, f"not monotone at x={x[bad[0]]!r}, {x[bad[0] + 1]!r}: z={z[bad[0]]!r} > {z[bad[0] + 1]!r}"


def native(params, x):
    return Flow(params).transform(x)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=spline_params(), seed=st.integers(0, 2**32 - 1))
def test_c_transform_is_monotone_and_finite(params, seed):
    check_monotone(native, params, seed)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=spline_params(), seed=st.integers(0, 2**32 - 1))
def test_numba_reference_is_monotone_and_bitwise_equal(params, seed):
    x = keys_for(params, np.random.default_rng(seed))
    z = transform_numba(params, x)
    assert np.array_equal(z, native(params, x))
    check_monotone(transform_numba, params, seed)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=spline_params(), seed=st.integers(0, 2**32 - 1))
def test_training_feature_and_search_step_match_the_reference(params, seed):
    """What training computes without numba (nfl.flow.features, the C lifting step) is the oracle's."""
    s = layout.unpack(params)
    x = keys_for(params, np.random.default_rng(seed))
    assert np.array_equal(features.feature(x, s.feature, s.scale, s.offset),
                          feature_numba(x, s.feature, s.scale, s.offset))
    assert Flow(params).compiled.lifting_step == prepare_bins(s.knots, s.masses)[3]


def naive_unclamped(params, x):
    """The same linear spline, evaluated from the bin's right knot and not clamped to its knot values.

    Mathematically identical to flow.c; in floating point it can step back by an ulp.
    """
    s = layout.unpack(params)
    g = x if s.feature == "linear" else np.array([_ordinal(v) for v in x])
    u = np.clip(g * s.scale + s.offset, 0.0, 1.0)
    y = np.concatenate([[0.0], np.cumsum(s.masses)]) / s.masses.sum()
    j = np.clip(np.searchsorted(s.knots, u, side="right") - 1, 0, s.masses.size - 1)
    slope = (y[j + 1] - y[j]) / (s.knots[j + 1] - s.knots[j])
    return np.clip(y[j + 1] - (s.knots[j + 1] - u) * slope, 0.0, 1.0)


def _ordinal(v):
    b = struct.unpack("<q", struct.pack("<d", v))[0]
    return float(-(b & (2**63 - 1)) if b < 0 else b)


def test_the_monotonicity_check_catches_an_unclamped_spline():
    """The property above has teeth: the same check finds an ulp-sized violation in a naive evaluation."""
    prop = settings(max_examples=1000, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])(
        given(params=spline_params(), seed=st.integers(0, 2**32 - 1))(
            lambda params, seed: check_monotone(naive_unclamped, params, seed)))
    with pytest.raises(AssertionError, match="not monotone"):
        prop()


def _trained_params():
    """A realistic flow: the shape training produces, on lognormal keys (no torch needed)."""
    from nfl.flow.train import init_spline

    rng = np.random.default_rng(7)
    keys = np.unique((rng.lognormal(0, 2, 120_000) * 1e9).astype(np.uint64)).astype(np.float64)
    g = np.log2(keys)  # any monotone stand-in for the feature is fine for a knot layout
    u = np.sort((g - g.min()) / (g.max() - g.min()))
    knots, masses = init_spline(u)
    scale = 0.5 / (0.5 * keys.max() - 0.5 * keys.min())
    return layout.pack(layout.Spline("linear", scale, -keys.min() * scale, knots, masses))


@pytest.mark.parametrize("source", ["trained-shape", "random"])
def test_c_and_numba_agree_on_a_million_keys(source):
    rng = np.random.default_rng(3)
    if source == "random":
        knots = np.concatenate([[0.0], np.sort(rng.random(4999)), [1.0]])
        params = layout.pack(layout.Spline("log", 2.0**-64, 0.5, knots, rng.exponential(1, 5000)))
    else:
        params = _trained_params()
    x = np.concatenate([rng.lognormal(0, 2, 999_000) * 1e9, rng.uniform(-1e19, 1e19, 1000)])
    z_c, z_nb = native(params, x), transform_numba(params, x)
    np.testing.assert_allclose(z_c, z_nb, rtol=1e-12, atol=0)


def test_transform_accepts_every_key_dtype_and_order():
    params = _trained_params()
    flow = Flow(params)
    keys = np.array([5, 10**9, 3 * 10**12, 2**63], dtype=np.uint64)
    expected = flow.transform(keys.astype(np.float64))
    np.testing.assert_array_equal(flow.transform(keys), expected)
    np.testing.assert_array_equal(flow.transform(keys.astype(">u8")), expected)
    np.testing.assert_array_equal(flow.transform(keys[::-1].copy()[::-1]), expected)
    np.testing.assert_array_equal(flow.transform(keys[:3].astype(np.int64)), expected[:3])
    assert flow.transform(np.array([], dtype=np.int64)).shape == (0,)
    with pytest.raises(TypeError):
        flow.transform(np.array([1, 2], dtype=np.float32))
    with pytest.raises(TypeError):
        flow.transform(np.array(["a"], dtype=object))


def test_concurrent_transforms_agree():
    flow = Flow(_trained_params())
    x = np.random.default_rng(5).lognormal(0, 2, 400_000) * 1e9
    expected = flow.transform(x)
    results = [None] * 4

    def work(i):
        results[i] = flow.transform(x)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, expected)


def _corruptions():
    good = layout.pack(layout.Spline("linear", 1.0, 0.0, np.array([0.0, 0.25, 1.0]), np.array([1.0, 2.0])))
    cases = {"empty": good[:0], "header only": good[:7], "one short": good[:-1], "one long": np.append(good, 1.0)}
    for name, index, value in [
        ("magic", 0, 1.0), ("family", 1, 2.0), ("version", 2, 2.0), ("feature", 3, 2.0),
        ("zero scale", 4, 0.0), ("negative scale", 4, -1.0), ("inf scale", 4, math.inf), ("nan offset", 5, math.nan),
        ("fractional bins", 6, 1.5), ("zero bins", 6, 0.0), ("huge bins", 6, 2.0**40), ("nan bins", 6, math.nan),
        ("first knot", 7, 0.1), ("last knot", 9, 0.9), ("unordered knots", 8, 1.0), ("nan knot", 8, math.nan),
        ("negative mass", 10, -1.0), ("inf mass", 11, math.inf), ("nan mass", 10, math.nan),
    ]:
        bad = good.copy()
        bad[index] = value
        cases[name] = bad
    zero = good.copy()
    zero[10:] = 0.0
    cases["all masses zero"] = zero
    steep = layout.Spline("linear", 1.0, 0.0, np.array([0.0, 5e-324, 1.0]), np.array([1.0, 1.0]))
    cases["infinite slope"] = np.concatenate([good[:7], steep.knots, steep.masses])
    return cases


@pytest.mark.parametrize("name,params", list(_corruptions().items()))
def test_malformed_parameters_are_refused_by_c_and_python(name, params):
    from nfl._native import ffi, lib

    raw = np.ascontiguousarray(params, dtype=np.float64)
    ptr = lib.nfl_flow_create(ffi.from_buffer("double[]", raw) if raw.size else ffi.NULL, raw.size)
    assert ptr == ffi.NULL
    with pytest.raises(ValueError):
        Flow(params)
