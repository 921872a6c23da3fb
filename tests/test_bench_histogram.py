"""The runner's HDR-style histogram against numpy on known data."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.histogram import PERCENTILES, PRECISION, SUB_BITS, Histogram, bucket_bounds, bucket_index


def _numpy(values, p):
    return np.percentile(values, p, method="inverted_cdf")  # nearest rank, as HdrHistogram


@pytest.mark.parametrize("name, values", [
    ("lognormal", np.random.default_rng(1).lognormal(6, 1.5, 200_000).astype(np.int64)),
    ("uniform-small", np.random.default_rng(2).integers(0, 1 << SUB_BITS, 50_000)),
    ("heavy-tail", (np.random.default_rng(3).pareto(1.2, 100_000) * 100).astype(np.int64)),
])
def test_percentiles_match_numpy_within_precision(name, values):
    h = Histogram.of(values)
    for p in [*PERCENTILES.values(), 100.0]:
        exact = _numpy(values, p)
        got = h.percentile(p)
        assert exact <= got <= exact * (1 + PRECISION), (name, p, got, exact)


def test_exact_below_sub_bucket_range():
    values = np.arange(1 << SUB_BITS)
    h = Histogram.of(values)
    for p in (1, 25, 50, 99, 99.9):
        assert h.percentile(p) == _numpy(values, p)


def test_summary_max_mean_min_count_are_exact():
    values = np.array([5, 7, 1_000_003, 12_345_678_901])
    s = Histogram.of(values).summary()
    assert (s["max"], s["min"], s["count"]) == (12_345_678_901, 5, 4)
    assert s["mean"] == pytest.approx(values.mean())
    assert set(s) >= {"p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"}


def test_merge_equals_recording_everything():
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 10**7, 1000), rng.integers(0, 10**4, 3000)
    merged = Histogram.of(a)
    merged.merge(Histogram.of(b))
    whole = Histogram.of(np.concatenate([a, b]))
    assert merged.summary() == whole.summary()
    assert np.array_equal(merged.counts, whole.counts)


def test_empty_histogram_has_no_figures():
    s = Histogram().summary()
    assert s["p50"] is None and s["max"] is None and s["count"] == 0
    assert Histogram().cdf() == []


def test_cdf_is_monotone_and_ends_at_one():
    h = Histogram.of(np.random.default_rng(5).lognormal(5, 2, 10_000))
    points = h.cdf(points=50)
    assert len(points) <= 50
    assert all(x1 <= x2 and f1 <= f2 for (x1, f1), (x2, f2) in zip(points, points[1:]))
    assert points[-1] == [h.max, 1.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**50), min_size=1, max_size=200), st.floats(0.01, 100))
def test_any_data_any_percentile(values, p):
    values = np.array(values)
    lo, hi = bucket_bounds(bucket_index(values))
    assert np.all(lo <= values) and np.all(values <= hi)
    exact = _numpy(values, p)
    assert exact <= Histogram.of(values).percentile(p) <= exact * (1 + PRECISION)
