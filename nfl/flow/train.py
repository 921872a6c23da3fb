"""Training of the spline flow by maximum likelihood on a sample of the keys.

Steps: draw the sample (seeded; Flow.train's default is 10 % of the keys) and
hold out a tenth of it.  For each feature (linear or log scale) place the
knots where the sample's density changes (nfl.flow.knots: adjacent bins merged
by least likelihood loss) and set the bin masses to smoothed counts: the
closed-form maximum-likelihood fit of a piecewise-constant density on those
knots, smoothed.  Keep the feature with the lower held-out negative
log-likelihood in key space (the cheaper bin search among near ties), never
one that merges more sample keys into equal features (the log scale's double
has 2^-42 relative resolution).  Then fine-tune the masses with Adam, stopping
early when the held-out likelihood stops improving by MIN_GAIN.  Last, choose
the bin count: the knots merged on to powers of two from MIN_BINS, and the
fewest bins that conflict no worse than the finest over all the keys
(smallest_as_good).  Deterministic for a given seed.
"""
import math
import time
from typing import NamedTuple

import numpy as np

from nfl import conflicts
from nfl.flow import features, knots, layout
from nfl.flow.compiled import Compiled
from nfl.flow.progress import Work

MIN_SAMPLE = 10_000  # the paper trains on max(10 %, 10,000) keys
VALIDATION = 0.1  # fraction of the sample held out for early stopping
KEYS_PER_BIN = 12  # training keys per bin on average: a 30 % sample gets the table a 10 % one had at 4
MAX_BINS = 65536
MIN_BINS = 256  # the coarsest candidate bin count (8 KiB of tables)
OVER_FULL_SLACK = 0.01  # a coarser spline may put this much more of the keys in over-full root slots
SMOOTHING = 0.5  # pseudo-count per bin
NEAR_TIE = 0.01  # nats per key: features closer than this are equally good
LEARNING_RATE = 1e-4
BATCH = 65536
PATIENCE = 2  # epochs without held-out improvement before stopping
MIN_GAIN = 1e-4  # nats per key: a smaller held-out gain is no improvement (it moves no key a slot)


def require_torch():
    """The torch module, or an ImportError that says how to get it."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError('training a flow needs PyTorch: pip install "nfl[train]"') from exc
    return torch


def draw_sample(x: np.ndarray, fraction: float, rng) -> np.ndarray:
    """max(fraction of x, MIN_SAMPLE) keys of x, at most all, in random order."""
    if not 0 < fraction <= 1:
        raise ValueError(f"sample must be in (0, 1]; got {fraction!r}")
    m = min(x.size, max(int(round(fraction * x.size)), MIN_SAMPLE))
    return x[rng.choice(x.size, m, replace=False)]


def feature_values(feature: str, x: np.ndarray) -> np.ndarray:
    """g(x) before normalization: x itself, or the order-preserving integer of its bits."""
    return x if feature == "linear" else features.ordinal(x)


def normalization(feature: str, x: np.ndarray):
    """(scale, offset) mapping the sample's g(x) range onto [0, 1]; None if it is degenerate."""
    g = feature_values(feature, x)
    lo, hi = float(g.min()), float(g.max())
    scale = 0.5 / (0.5 * hi - 0.5 * lo) if hi > lo else math.inf
    offset = -lo * scale
    if not (math.isfinite(scale) and scale > 0 and math.isfinite(offset)):
        return None
    return scale, offset


def log_feature_slope(feature: str, scale: float, x: np.ndarray) -> np.ndarray:
    """log du/dx: the feature's share of the log-likelihood in key space."""
    if feature == "linear":
        return np.full(x.size, math.log(scale))
    _, exp = np.frexp(np.abs(x))
    steps = np.where(np.abs(x) < 2.0**-1022, 1074, 53 - exp)  # log2 of ordinal steps per unit x
    return math.log(scale) + steps * math.log(2.0)


def init_spline(u: np.ndarray):
    """Knots where the density changes (nfl.flow.knots), KEYS_PER_BIN keys a bin on average; masses = smoothed counts."""
    k = int(min(MAX_BINS, max(1, u.size // KEYS_PER_BIN)))
    e, counts = knots.place_knots(u, k)
    return e, counts + SMOOTHING


class _Candidate:
    """One feature: its normalization, the split sample's features, the initial spline."""

    def __init__(self, torch, feature, scale, offset, x_train, x_valid):
        from nfl.flow.model import LinearSpline

        self.feature, self.scale, self.offset = feature, scale, offset
        self.u_train = torch.from_numpy(features.feature(x_train, feature, scale, offset))
        self.u_valid = torch.from_numpy(features.feature(x_valid, feature, scale, offset))
        u_sorted = np.sort(self.u_train.numpy())
        self.distinct = int(np.count_nonzero(np.diff(u_sorted))) + 1
        self.knots, masses = init_spline(u_sorted)
        self.model = LinearSpline(self.knots, masses)
        self.bins_train = self.model.bins_of(self.u_train)
        self.bins_valid = self.model.bins_of(self.u_valid)
        self.slope_nll = -float(np.mean(log_feature_slope(feature, scale, x_valid)))
        self.nll = self.heldout_nll(torch)
        spline = layout.Spline(feature, scale, offset, self.knots, masses)
        self.search_step = Compiled(layout.pack(spline)).lifting_step

    def heldout_nll(self, torch) -> float:
        """Mean negative log-likelihood of the held-out keys, in key space."""
        with torch.no_grad():
            return -float(self.model(self.u_valid, self.bins_valid)[1].mean()) + self.slope_nll


def _choose(candidates):
    """Among the features that keep the most sample keys apart, the lowest held-out NLL,
    or among near ties the one with the shortest bin search."""
    most = max(c.distinct for c in candidates)
    keep = [c for c in candidates if c.distinct == most]
    best = min(c.nll for c in keep)
    return min((c for c in keep if c.nll <= best + NEAR_TIE), key=lambda c: (c.search_step, c.nll))


def _fine_tune(torch, c: _Candidate, epochs: int, rng, work: Work):
    """Adam on the bin masses with early stopping; (best masses, epochs run, best held-out NLL)."""
    optimizer = torch.optim.Adam(c.model.parameters(), lr=LEARNING_RATE)
    best_nll, best_masses = c.nll, c.model.masses()
    stale = epochs_run = 0
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(c.u_train.numel()))
        for i in range(0, c.u_train.numel(), BATCH):
            batch = order[i:i + BATCH]
            loss = -c.model(c.u_train[batch], c.bins_train[batch])[1].mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        epochs_run += 1
        current = c.heldout_nll(torch)
        work.step(f"epoch {epochs_run}, held-out nll {current:.4f}")
        gain = best_nll - current
        if gain > 0:
            best_nll, best_masses = current, c.model.masses()
        stale = 0 if gain >= MIN_GAIN else stale + 1
        if stale >= PATIENCE:
            break
    work.step("choosing the bin count", epochs - epochs_run)
    return best_masses, epochs_run, best_nll


class _Fit(NamedTuple):
    """One candidate bin count of the trained spline and what it does to the keys."""

    spline: layout.Spline
    p99: float  # tail conflict degree of a linear model over the transformed keys (amplification 2)
    over_full: float  # fraction of the keys in root slots fuller than the bucket that p99 sets


def coarsen(spline: layout.Spline, edges: np.ndarray) -> layout.Spline:
    """The spline on a subset of its knots, each coarse bin's mass the sum of the fine bins inside it:
    it passes through the fine spline's points at the knots it keeps."""
    starts = np.searchsorted(spline.knots, edges[:-1])
    return spline._replace(knots=edges, masses=np.add.reduceat(spline.masses, starts))


def measure(spline: layout.Spline, x: np.ndarray) -> _Fit:
    """The spline's tail conflict degree and over-full fraction over the keys x (the C core's counts)."""
    counts = conflicts.model_counts(x, Compiled(layout.pack(spline)))
    stats = conflicts.stats_of(counts)
    return _Fit(spline, stats.p99, conflicts.over_full_share(counts, conflicts.bucket_for(stats)))


def smallest_as_good(fits):
    """The fit with the fewest bins that conflicts no worse than the finest (fits in increasing bins).

    A lookup reads the flow's tables besides the tree: 65,536 bins are 2 MiB,
    out of a core's cache, and the auto switch charges 1 MiB of them a whole
    tree level.  Smooth keys lose nothing with fewer bins (10M lognormal: p99
    3 at 256 bins as at 65,536, and fewer keys in over-full slots, since fine
    bins follow the sample's noise; get_many on 5M keys 17 % faster), while
    bursty keys (osm, runs of commit times) need the fine knots.  So the
    conflicts over all the keys decide: a tail conflict degree no higher than
    the finest's, and at most OVER_FULL_SLACK more of the keys in over-full
    root slots (the levels the switch counts), which the integer p99 does not
    see (ts, 10 % sample: p99 7 at 256 bins as at 7,500, but 9.5 % of the keys
    over-full against 7.6 %).
    """
    finest = fits[-1]
    return next(f for f in fits if f.p99 <= finest.p99 and f.over_full <= finest.over_full + OVER_FULL_SLACK)


def bin_budgets(finest: int) -> list:
    """The coarser candidate bin counts: the powers of two from MIN_BINS below the finest."""
    return [MIN_BINS << i for i in range(MAX_BINS.bit_length()) if MIN_BINS << i < finest]


def coarser_knots(c: _Candidate) -> list:
    """Knots of the coarser candidates, nested in c's (its bins merged on by nfl.flow.knots), coarsest first."""
    counts = knots.bin_counts(c.knots, c.u_train.numpy())
    return knots.coarser_knots(c.knots, counts, bin_budgets(counts.size))


def choose_bins(spline: layout.Spline, coarser, x: np.ndarray, work: Work):
    """(the smallest spline as good as the fine one, every candidate's fit in increasing bins)."""
    work.more(len(coarser))
    fits = []
    for s in [coarsen(spline, e) for e in coarser] + [spline]:
        fits.append(measure(s, x))
        work.step(f"measured {s.masses.size:,} bins")
    return smallest_as_good(fits), fits


def train_spline(x: np.ndarray, *, sample, epochs=15, seed=0, progress=True):
    """(params, meta) of a spline flow fitted to the key values x.

    progress: a bar on stderr over every step (each feature's knots, each
    epoch, each candidate bin count); inside a job already showing one
    (bulk_load(progress=True)) the steps join that bar whatever progress says.
    """
    torch = require_torch()
    with Work("training flow", len(layout.FEATURES) + epochs + 1, progress) as work:
        return _train(torch, x, sample, epochs, seed, work)


def _train(torch, x: np.ndarray, sample, epochs, seed, work: Work):
    """train_spline's steps, reported to work."""
    start = time.perf_counter()
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("cannot train a flow on no (finite) keys")
    rng = np.random.default_rng(seed)
    xs = draw_sample(x, sample, rng)
    n_valid = int(xs.size * VALIDATION)
    x_train = xs[n_valid:]
    x_valid = xs[:n_valid] if n_valid else x_train
    meta = {"family": "spline", "trained_on": int(x.size), "sample": int(xs.size), "seed": int(seed)}

    candidates = []
    for feature in layout.FEATURES:
        norm = normalization(feature, xs)
        if norm is not None:
            candidates.append(_Candidate(torch, feature, *norm, x_train, x_valid))
        work.step(f"{feature} knots placed")
    if not candidates:  # all keys equal: a valid, trivial flow
        trivial = layout.Spline("linear", 1.0, 0.5 - float(xs[0]), np.array([0.0, 1.0]), np.ones(1))
        return layout.pack(trivial), {**meta, "degenerate": True}

    chosen = _choose(candidates)
    masses, epochs_run, nll = _fine_tune(torch, chosen, epochs, rng, work)
    fine = layout.Spline(chosen.feature, chosen.scale, chosen.offset, chosen.knots, masses)
    best, fits = choose_bins(fine, coarser_knots(chosen), x, work)
    params = layout.pack(best.spline)
    meta.update({
        "bins": int(best.spline.masses.size),
        "bin_budget": int(masses.size),
        "bin_p99": {str(f.spline.masses.size): f.p99 for f in fits},
        "bin_over_full": {str(f.spline.masses.size): round(f.over_full, 5) for f in fits},
        "feature_nll": {c.feature: c.nll for c in candidates},
        "search_step": {c.feature: c.search_step for c in candidates},
        "distinct": {c.feature: c.distinct for c in candidates},
        "initial_nll": chosen.nll,
        "heldout_nll": nll,
        "epochs_run": epochs_run,
        "seconds": round(time.perf_counter() - start, 3),
        "torch": torch.__version__,
    })
    return params, meta
