"""Knot placement of the spline flow: adjacent bins merged by least likelihood loss.

Real keys are bursty (runs of consecutive seconds, dense address blocks): an
equal-count (quantile) bin that straddles a burst's edge spreads the burst's
keys over the whole bin's width and packs them into a few slots.  So start
from one bin per gap between consecutive distinct sample features and merge
adjacent pairs that lose the least log-likelihood of the piecewise-constant
density, until the budget is left: bins stay narrow where the density changes
and grow wide where it is smooth.  Merging goes in rounds of sequential passes
over arrays rather than by a heap: as good on the real key sets, several times
faster (a heap's pops miss the cache on millions of bins).  Merging on past
the budget gives coarser knot sets nested in the finer ones, the candidates
training chooses the bin count among (nfl.flow.train).
"""
import numpy as np

MIN_GAP = 1e-300  # closer knots are merged, so that every slope is finite


def clean_edges(points: np.ndarray) -> np.ndarray:
    """Knots from candidate points: 0, the distinct points inside (0, 1) at least MIN_GAP apart, 1."""
    e = np.unique(points)
    e = e[(e > 0.0) & (e < 1.0)]
    e = np.concatenate([[0.0], e[np.diff(e, prepend=0.0) >= MIN_GAP], [1.0]])
    if e.size > 2 and 1.0 - e[-2] < MIN_GAP:
        e = np.delete(e, -2)
    return e


def bin_counts(edges: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Sample keys u per bin [e_j, e_j+1); the last bin also holds the keys at 1."""
    bins = np.minimum(np.searchsorted(edges, u, side="right") - 1, edges.size - 2)
    return np.bincount(bins, minlength=edges.size - 1).astype(np.float64)


def _loss(m1, w1, m2, w2):
    """Log-likelihood lost by giving adjacent bins (m1, w1), (m2, w2) one density each (arrays; >= 0 up to rounding).

    Written with log m - log w so that no ratio overflows: widths go down to MIN_GAP.
    """
    def part(m, w):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(m > 0, m * (np.log(m) - np.log(w)), 0.0)

    return -part(m1 + m2, w1 + w2) + part(m1, w1) + part(m2, w2)


def _merging(loss, threshold, most):
    """drop[j]: bin j joins bin j - 1 this round.

    A pair of adjacent bins merges when its loss is at most threshold, no
    neighbouring pair loses less and its left bin is not already merging:
    a left-to-right pass, so each bin merges at most once a round; along a
    run of such pairs (equal losses) every other one merges, from the run's
    start.  At most `most` pairs, the leftmost.
    """
    k = loss.size + 1
    left_ok = np.ones(k - 1, dtype=bool)
    left_ok[1:] = ~(loss[:-1] < loss[1:])
    right_ok = np.ones(k - 1, dtype=bool)
    right_ok[:-1] = ~(loss[1:] < loss[:-1])
    candidate = (loss <= threshold) & left_ok & right_ok
    j = np.arange(k - 1)
    run_start = np.maximum.accumulate(np.where(candidate & ~np.concatenate([[False], candidate[:-1]]), j, 0))
    take = candidate & ((j - run_start) % 2 == 0)
    take &= np.cumsum(take) <= most
    drop = np.zeros(k, dtype=bool)
    drop[1:] = take
    return drop


def _merge_round(edges, mass, width, bins):
    """One round of merges, at most down to `bins` bins; (edges, masses, widths) after it.

    Pairs whose loss is in the cheaper half merge (in the last round: among
    the k - bins cheapest), by _merging's rule.  The cheapest pair always
    merges, so every round makes progress.
    """
    k = mass.shape[0]
    loss = _loss(mass[:-1], width[:-1], mass[1:], width[1:])
    rank = min((k - 1) // 2, k - bins - 1)  # the last round takes only the cheapest pairs
    threshold = np.partition(loss, rank)[rank]
    drop = _merging(loss, threshold, k - bins)
    starts = np.flatnonzero(~drop)
    out_edges = np.append(edges[starts], edges[k])
    return out_edges, np.add.reduceat(mass, starts), np.add.reduceat(width, starts)


def place_knots(u: np.ndarray, bins: int):
    """(knots, counts) of at most `bins` bins for the sorted sample features u in [0, 1]."""
    edges = clean_edges(u)  # one bin per gap between distinct sample features
    return merge_down(edges, bin_counts(edges, u), bins)


def merge_down(edges: np.ndarray, mass: np.ndarray, bins: int):
    """(knots, masses) of at most `bins` bins: adjacent bins of (edges, mass) merged by least loss."""
    width = np.diff(edges)
    while mass.size > bins:
        edges, mass, width = _merge_round(edges, mass, width, int(bins))
    return edges, mass


def coarser_knots(edges: np.ndarray, mass: np.ndarray, budgets) -> list:
    """Knots of at most b bins for each budget b, in increasing b, merged on from (edges, mass).

    Each set is merged on from the next larger one, so it is a subset of it: a
    coarser spline's bins are unions of a finer one's.
    """
    levels = []
    for bins in sorted(budgets, reverse=True):
        edges, mass = merge_down(edges, mass, bins)
        levels.append(edges)
    return levels[::-1]
