"""Knot placement of the spline flow: the budget, a valid layout, knots at density changes, nested coarser sets."""
import numpy as np
import pytest

from nfl.flow import knots, layout


def _valid(edges, counts, u):
    assert edges[0] == 0.0 and edges[-1] == 1.0 and np.all(np.diff(edges) >= knots.MIN_GAP)
    assert counts.size == edges.size - 1 and counts.sum() == u.size and np.all(counts >= 0)
    layout.check(layout.pack(layout.Spline("linear", 1.0, 0.0, edges, counts + 0.5)))


@pytest.mark.parametrize("bins", [1, 2, 7, 100, 5000])
def test_the_budget_is_met_exactly_with_a_valid_layout(bins):
    rng = np.random.default_rng(bins)
    u = np.sort(np.concatenate([rng.random(3000), rng.random(1000) * 1e-3, [0.0, 1.0]]))
    edges, counts = knots.place_knots(u, bins)
    assert counts.size == min(bins, np.unique(u).size - 1)
    _valid(edges, counts, u)
    assert np.all(np.isin(edges[1:-1], u))  # knots sit on sample keys


def test_a_dense_block_gets_knots_at_both_ends():
    """700 keys in a block 1e-5 wide among 2,000 spread keys: with 8 bins the block is a bin of its own
    (quantile knots, one every 337 keys, would cut it at arbitrary keys)."""
    rng = np.random.default_rng(5)
    spread = rng.random(2000)
    block = 0.3 + np.sort(rng.random(700)) * 1e-5
    u = np.sort(np.concatenate([spread, block, [0.0, 1.0]]))
    edges, counts = knots.place_knots(u, 8)
    start = np.flatnonzero(edges == block[0])
    assert start.size == 1 and edges[start[0] + 1] == block[-1]  # the last key opens the next bin
    assert counts[start[0]] == block.size - 1


def test_sub_min_gap_widths_and_equal_keys_stay_finite():
    u = np.sort(np.concatenate([[0.0, 1.0], np.arange(1, 40) * 5e-324, np.full(30, 0.5), np.linspace(0.2, 0.9, 500)]))
    edges, counts = knots.place_knots(u, 50)
    _valid(edges, counts, u)


def test_all_equal_features_give_one_bin():
    u = np.zeros(100)
    edges, counts = knots.place_knots(u, 10)
    assert np.array_equal(edges, [0.0, 1.0]) and counts.tolist() == [100.0]


def test_coarser_knots_are_nested_and_meet_each_budget():
    """Each coarser set is a subset of the next finer one, so its bins are unions of the finer bins."""
    rng = np.random.default_rng(3)
    u = np.sort(np.concatenate([rng.random(5000), 0.6 + rng.random(2000) * 1e-4, [0.0, 1.0]]))
    edges, counts = knots.place_knots(u, 1000)
    levels = knots.coarser_knots(edges, counts, [400, 20, 100])
    assert [e.size - 1 for e in levels] == [20, 100, 400]
    for coarse, fine in zip(levels, levels[1:] + [edges]):
        assert np.all(np.isin(coarse, fine))
        _valid(coarse, knots.bin_counts(coarse, u), u)
