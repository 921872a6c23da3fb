"""YCSB's request generators: the laws they follow, checked with fixed seeds so nothing flakes."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from workloads import generators as gen


def gray_pmf(n, theta):
    """The exact law of Gray et al.'s generator: ranks 0 and 1 exact Zipf, the tail by inversion."""
    zetan = np.sum(np.arange(1, n + 1, dtype=float) ** -theta)
    zeta2 = 1 + 0.5**theta
    eta = (1 - (2 / n) ** (1 - theta)) / (1 - zeta2 / zetan)

    def cdf_u(v):  # the u at which the generator's continuous value reaches v
        return 1 - (1 - (v / n) ** (1 - theta)) / eta

    p = np.empty(n)
    p[0], p[1] = 1 / zetan, 0.5**theta / zetan
    k = np.arange(2, n)
    p[2:] = cdf_u(k + 1) - cdf_u(k)
    return p


@pytest.mark.parametrize("theta", [0.99, 0.8, 0.5])
def test_zipfian_frequencies_fit_the_law(theta):
    n, size = 100, 300_000
    counts = np.bincount(gen.sample(gen.make_zipfian(0, n - 1, theta), size, seed=7), minlength=n)
    assert len(counts) == n  # never outside 0..n-1
    # goodness of fit against the generator's exact law
    assert stats.chisquare(counts, gray_pmf(n, theta) * size).pvalue > 1e-3
    # and the law is Zipf's: the two head ranks exactly, the slope on log-log axes
    zetan = np.sum(np.arange(1, n + 1) ** -theta)
    for rank in (0, 1):
        p = (rank + 1) ** -theta / zetan
        assert abs(counts[rank] - size * p) < 4 * np.sqrt(size * p * (1 - p))
    slope = np.polyfit(np.log(np.arange(1, n + 1)), np.log(counts), 1)[0]
    assert slope == pytest.approx(-theta, abs=0.04)


def test_the_chi_square_test_can_fail():
    counts = np.bincount(gen.sample(gen.make_zipfian(0, 99, 0.99), 300_000, seed=7), minlength=100)
    assert stats.chisquare(counts, gray_pmf(100, 0.8) * 300_000).pvalue < 1e-10


def test_zeta_matches_the_direct_sum():
    for n, theta in [(1, 0.99), (10_000, 0.99), (250_000, 0.99), (250_000, 0.3)]:
        direct = np.sum(1.0 / np.arange(1, n + 1, dtype=float) ** theta)
        assert gen.zeta(n, theta) == pytest.approx(direct, rel=1e-12)
    assert gen.zeta(10_000_000_000, 0.99) == pytest.approx(26.46902820178302, rel=1e-11)  # YCSB's ZETAN


def fnv1a64_reference(value):
    h = 0xCBF29CE484222325
    for byte in value.to_bytes(8, "little"):
        h = ((h ^ byte) * 0x100000001B3) % 2**64
    return h if h < 2**63 else 2**64 - h  # Java's Math.abs of the signed result


@given(st.integers(0, 2**63 - 1))
def test_fnv_hash_is_fnv1a_64(value):
    assert int(gen._fnv1a64(value)) == fnv1a64_reference(value)


def test_scrambled_zipfian_spreads_the_hot_items():
    items, size = 10_000, 400_000
    draws = gen.sample(gen.make_scrambled(0, items - 1), size, seed=3)
    counts = np.bincount(draws, minlength=items)
    assert len(counts) == items
    hottest = np.argsort(counts)[::-1][:50]
    # still zipfian: the hottest item takes about 1/zeta(10^10) of the draws
    assert counts[hottest[0]] / size > 0.03
    # but the hot items lie all over the item space, not at its start
    per_fifth = np.bincount(hottest * 5 // items, minlength=5)
    assert per_fifth.min() >= 3, per_fifth
    assert stats.kstest(hottest / items, "uniform").pvalue > 1e-3
    plain = np.bincount(gen.sample(gen.make_zipfian(0, items - 1), size, seed=3), minlength=items)
    assert set(np.argsort(plain)[::-1][:10]) <= set(range(12))


def test_uniform_fits():
    counts = np.bincount(gen.sample(gen.make_uniform(10, 59), 100_000, seed=1))[10:]
    assert len(counts) == 50
    assert stats.chisquare(counts).pvalue > 1e-3


def test_hotspot_fractions():
    draws = gen.sample(gen.make_hotspot(0, 999, hot_data=0.1, hot_ops=0.9), 200_000, seed=2)
    hot = draws < 100
    assert hot.mean() == pytest.approx(0.9, abs=0.005)
    assert stats.chisquare(np.bincount(draws[hot])).pvalue > 1e-3
    assert stats.chisquare(np.bincount(draws[~hot] - 100)).pvalue > 1e-3
    assert draws.max() == 999


def test_sequential_wraps():
    assert gen.sample(gen.make_sequential(5, 8), 10, seed=0).tolist() == [5, 6, 7, 8, 5, 6, 7, 8, 5, 6]


def test_latest_prefers_the_newest_record():
    last = 5_000
    draws = gen.sample(gen.make_latest(last), 100_000, seed=4, last=last)
    assert draws.max() <= last and draws.min() >= 0
    back = np.bincount(last - draws)
    assert back[0] == back.max()  # the newest record is the most popular
    assert np.mean(last - draws < 10) > 0.25


def test_exponential_percentile():
    last, span = 10_000, 1_000
    draws = gen.sample(gen.make_exponential(95, span), 100_000, seed=5, last=last)
    assert np.mean(last - draws < span) == pytest.approx(0.95, abs=0.005)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2_000), st.integers(0, 2**64 - 1))
def test_permutation_and_sorted_sample(n, seed):
    perm = gen.permutation(n, gen.rng_state(seed, 0))
    assert sorted(perm.tolist()) == list(range(n))
    m = n // 3
    picked = gen.sample_sorted(n, m, gen.rng_state(seed, 1))
    assert len(picked) == m and np.all(np.diff(picked) > 0) and (m == 0 or 0 <= picked[0] <= picked[-1] < n)


def test_sorted_sample_is_uniform():
    hits = np.bincount(np.concatenate([gen.sample_sorted(20, 5, gen.rng_state(s, 0)) for s in range(4_000)]))
    assert stats.chisquare(hits).pvalue > 1e-3


def test_bad_parameters():
    with pytest.raises(ValueError, match="zipfian constant"):
        gen.make_zipfian(0, 10, 1.0)
    with pytest.raises(ValueError, match="hot data fraction"):
        gen.make_hotspot(0, 10, 1.5, 0.5)
    with pytest.raises(ValueError, match="seed"):
        gen.rng_state(-1, 0)
