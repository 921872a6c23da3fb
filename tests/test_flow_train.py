"""Training the spline flow: determinism, the feature choice, the bin count, edge cases, quality, no-torch message."""
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from nfl.conflicts import conflict_stats  # noqa: E402
import flow_reference as reference  # noqa: E402
from nfl.flow import Flow, layout, train  # noqa: E402
from workloads import datasets  # noqa: E402


def lognormal(n, seed=1):
    return datasets.generate("lognormal", n, seed)


def test_training_is_deterministic_by_seed():
    keys = lognormal(30_000)
    a = Flow.train(keys, seed=3, progress=False)
    b = Flow.train(keys, seed=3, progress=False)
    c = Flow.train(keys, seed=4, progress=False)
    assert np.array_equal(a.params(), b.params()) and a.meta["bin_p99"] == b.meta["bin_p99"]
    assert not np.array_equal(a.params(), c.params())


def line_tail_conflicts(keys, amplification=2.0):
    """p99 keys per occupied slot of one line over sorted keys onto amplification * n slots.

    The tree's own root would not be one line here (its pieces model spreads
    lognormal keys by itself): this is the paper's raw reference."""
    slots = int(amplification * keys.size)
    pos = ((keys - keys[0]).astype(np.float64) * ((slots - 1) / float(keys[-1] - keys[0]))).astype(np.int64)
    counts = np.bincount(pos)
    return float(np.percentile(counts[counts > 0], 99))


def test_flow_flattens_lognormal_keys():
    keys = lognormal(100_000)
    flow = Flow.train(keys, progress=False)
    z = flow.transform(keys)
    assert np.all(np.diff(z) >= 0)
    raw, flat = line_tail_conflicts(keys), conflict_stats(z).p99
    assert flat * 30 <= raw, (raw, flat)
    assert flow.feature == "log"  # near tie in likelihood: the shorter bin search wins
    assert flow.meta["trained_on"] == keys.size and flow.meta["sample"] == 10_000  # the default 10 %


def test_clustered_keys_pick_the_linear_scale():
    rng = np.random.default_rng(2)
    centers = rng.integers(0, 2**62, 200, dtype=np.uint64)
    keys = np.unique(centers[rng.integers(0, 200, 60_000)] + rng.integers(0, 10**5, 60_000).astype(np.uint64))
    flow = Flow.train(keys, progress=False)
    assert flow.feature == "linear"
    assert conflict_stats(flow.transform(keys)).p99 * 10 <= line_tail_conflicts(keys)


def test_bursts_of_a_few_dozen_keys_get_their_own_bins():
    """Runs of 10..59 consecutive integers among spread keys (commit times, address blocks): the knots
    follow the runs once the sample sees them (30 %).  Quantile knots on a 10 % sample (the earlier
    training) leave p99 at 26 of 32."""
    keys = bursty_keys()
    flow = Flow.train(keys, sample=0.3, progress=False)
    raw, flat = line_tail_conflicts(keys), conflict_stats(flow.transform(keys)).p99
    assert flat * 5 <= raw, (raw, flat)


def bursty_keys():
    """Runs of 10..59 consecutive integers among spread keys, 100,000 in all."""
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 2**40, 1000, dtype=np.uint64)
    runs = np.concatenate([s + np.arange(n, dtype=np.uint64) for s, n in zip(starts, rng.integers(10, 60, 1000))])
    return np.unique(np.concatenate([runs, rng.integers(0, 2**40, 100_000 - runs.size, dtype=np.uint64)]))


def _finest_p99(flow):
    return flow.meta["bin_p99"][str(flow.meta["bin_budget"])]


def test_smooth_keys_get_few_bins_and_the_finest_tail():
    keys = lognormal(300_000)
    flow = Flow.train(keys, sample=0.3, progress=False)
    assert flow.bins * 4 <= flow.meta["bin_budget"], flow.meta["bin_p99"]
    p99 = conflict_stats(flow.transform(keys)).p99
    assert p99 == flow.meta["bin_p99"][str(flow.bins)] <= _finest_p99(flow)
    assert min(int(b) for b in flow.meta["bin_p99"]) == train.MIN_BINS


def test_bursty_keys_keep_the_fine_bins():
    """Coarser knots merge the runs back into their neighbours: the tail conflicts rise, so the chosen
    count stays above half the budget."""
    flow = Flow.train(bursty_keys(), sample=0.3, progress=False)
    assert flow.bins * 2 > flow.meta["bin_budget"], flow.meta["bin_p99"]
    assert flow.meta["bin_p99"][str(flow.bins)] <= _finest_p99(flow)
    assert flow.meta["bin_p99"][str(train.MIN_BINS)] > _finest_p99(flow)


def _fit(p99, over_full):
    return train._Fit(None, p99, over_full)


@pytest.mark.parametrize("fits, chosen", [
    ([(3, 0.02), (3, 0.03), (3, 0.03)], 0),  # as good: the smallest
    ([(5, 0.02), (4, 0.02), (4, 0.02)], 1),  # a higher tail rules a candidate out
    ([(4, 0.041), (4, 0.035), (4, 0.03)], 1),  # so do more than OVER_FULL_SLACK more over-full keys
    ([(2, 0.01), (3, 0.02), (3, 0.02)], 0),  # better than the finest is as good
    ([(6, 0.5)], 0),  # the finest alone
])
def test_the_smallest_fit_as_good_as_the_finest_wins(fits, chosen):
    fits = [_fit(*f) for f in fits]
    assert train.smallest_as_good(fits) is fits[chosen]


def test_a_coarsened_spline_passes_through_the_fine_points_it_keeps():
    rng = np.random.default_rng(4)
    fine = layout.Spline("linear", 1.0, 0.0, np.concatenate([[0.0], np.sort(rng.random(99)), [1.0]]), rng.random(100))
    kept = np.concatenate([fine.knots[:1], fine.knots[7:-1:9], fine.knots[-1:]])
    coarse = train.coarsen(fine, kept)
    assert coarse.masses.size == kept.size - 1 and np.isclose(coarse.masses.sum(), fine.masses.sum())
    z_fine = reference.transform_numba(layout.pack(fine), kept)
    assert np.allclose(reference.transform_numba(layout.pack(coarse), kept), z_fine, rtol=0, atol=1e-12)


def test_the_log_scale_is_not_chosen_when_it_merges_keys():
    keys = (10**15 + np.arange(50_000) * 7).astype(np.uint64)  # dense at a large magnitude
    flow = Flow.train(keys, progress=False)
    assert flow.meta["distinct"]["log"] < flow.meta["distinct"]["linear"]
    assert flow.feature == "linear"
    assert np.unique(flow.transform(keys)).size == keys.size


def test_sample_fraction_and_minimum():
    keys = lognormal(200_000)
    assert Flow.train(keys, sample=0.5, progress=False, epochs=1).meta["sample"] == 100_000
    assert Flow.train(keys, sample=0.01, progress=False, epochs=1).meta["sample"] == 10_000
    with pytest.raises(ValueError):
        Flow.train(keys, sample=0.0)
    with pytest.raises(ValueError):
        Flow.train(keys, family="bnaf")


@pytest.mark.parametrize("keys", [
    np.array([42], dtype=np.uint64),
    np.full(5, 7.5),
    np.array([-3, 5], dtype=np.int64),
    np.array([-np.inf, -1e308, 0.0, 1e-310, 1e308, np.inf]),
    np.arange(2**63 - 1000, 2**63 + 1000, dtype=np.uint64),
], ids=["one key", "all equal", "two ints", "extreme floats", "uint64 near 2^63"])
def test_edge_cases_give_valid_monotone_flows(keys):
    flow = Flow.train(keys, progress=False)
    z = flow.transform(np.sort(keys))
    assert np.all(np.isfinite(z)) and np.all(np.diff(z) >= 0)
    layout.check(flow.params())


def test_no_keys_is_an_error():
    with pytest.raises(ValueError):
        Flow.train(np.array([], dtype=np.uint64))


def test_progress_bar_goes_to_stderr(capsys):
    Flow.train(lognormal(20_000), progress=True, epochs=2)
    assert "training flow" in capsys.readouterr().err


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install "nfl\[train\]"'):
        Flow.train(lognormal(1000))
