"""The flow's figures: tail conflicts, what limits them, transform speed, training time, lookups.

    python -m bench.flow_report [--n 1000000] [--datasets a,b] [--skip-10m] [--skip-lookups] [--json out.json]

1. Tail conflicts (p99 conflict degree, amplification 2) of a linear model over
   raw keys, over the paper's flow (2D2H2L BNAF; its z is not monotone, so the
   fraction of adjacent keys it puts out of order is shown), and over the
   default spline flow (10 % sample) and the same trained on a 30 % sample;
   beside them ablations of the default, each with its
   feature and bin count: the previous default (knots at quantiles of a 10 %
   sample), the paper's normal target instead of a uniform one (z mapped
   through the normal quantile function) and equal-width bins.  The bin count
   is the one training chose: the fewest of the candidates (powers of two up
   to the budget, KEYS_PER_BIN sample keys a bin) that conflict no worse than
   the budget's (nfl.flow.train.smallest_as_good); "bins" shows it of the
   budget, the JSON every candidate's p99 (bin_p99).
2. What limits the gain: the adaptive knots on a 10 % sample and on all keys
   (same bins), and the floor of locally random keys (as many uniform random
   keys: Poisson placement, p99 3); the share of occupied slots above the p99
   that a 2x gain needs (under 1 % meets it).
3. C transform throughput, one thread, timed in thread CPU time, and the
   transform's table (bins chosen of the budget, bytes).
4. Training time of the default flow on 10M lognormal keys (10 % sample), in a
   fresh process so that importing torch counts; median of 3.
5. Batched lookups (get_many) on a lognormal index, flow on vs off, in thread
   CPU time (best and median of 7 alternating runs).
Heavy steps run one after another; the machine is shared.
"""
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np

from nfl.conflicts import conflict_stats, model_counts
from nfl.flow import Flow, features, knots, layout, train

from . import COMMAND, workloads
from .paper_flow import PaperFlow

datasets, usage = workloads("datasets"), workloads("usage")

DEFAULT_SETS = ("lognormal", "clustered", *datasets.REAL_SETS)
TEN_MILLION = 10_000_000


def lognormal_keys(n: int, seed: int) -> np.ndarray:
    """The paper's lognormal keys: exp(N(0, 2)) * 1e9 as uint64, unique, n of them (workloads.datasets)."""
    return datasets.generate("lognormal", n, seed)


def refit(flow: Flow, keys: np.ndarray, fraction: float, place) -> Flow:
    """The flow's feature and bin count, knots placed by place(sorted u, bins) on a sample, smoothed counts as masses."""
    s = layout.unpack(flow.params())
    x = keys.astype(np.float64)
    xs = x if fraction >= 1 else train.draw_sample(x, fraction, np.random.default_rng(0))
    u = np.sort(features.feature(xs, s.feature, s.scale, s.offset))
    edges, counts = place(u, s.masses.size)
    return Flow(layout.pack(s._replace(knots=edges, masses=counts + train.SMOOTHING)))


def quantile_knots(u: np.ndarray, bins: int):
    """Knots at the sample quantiles, u.size / bins keys apart: the placement before the adaptive one."""
    ranks = np.ceil(np.linspace(0.0, 1.0, bins + 1) * u.size).astype(np.int64) - 1
    edges = knots.clean_edges(u[np.clip(ranks, 0, u.size - 1)])
    return edges, knots.bin_counts(edges, u)


def equal_width_knots(u: np.ndarray, bins: int):
    """Equal-width bins (with masses counted on all keys: their best case)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return edges, knots.bin_counts(edges, u)


def p99(z: np.ndarray) -> float:
    return conflict_stats(np.sort(z)).p99


def share_above(z: np.ndarray, t: float) -> float:
    """Share of occupied slots holding more than t keys (p99 <= t needs under 1 %)."""
    counts = model_counts(z)
    return float(np.mean(counts > t))


def conflicts_row(name: str, keys: np.ndarray) -> dict:
    from scipy.special import ndtr, ndtri

    x = keys.astype(np.float64)
    t = time.perf_counter()
    flow = Flow.train(keys, progress=False)
    train_s = time.perf_counter() - t
    z = flow.transform(keys)
    z30 = Flow.train(keys, sample=0.3, progress=False).transform(keys)
    t = time.perf_counter()
    paper = PaperFlow.train(keys, progress=False)
    paper_s = time.perf_counter() - t
    zp = paper.transform(keys)
    eps = np.finfo(float).eps
    raw = p99(x)
    return {
        "dataset": name, "keys": int(keys.size),
        "raw": raw, "raw_max": int(conflict_stats(x).max),
        "paper": p99(zp), "paper_uniform": p99(ndtr(zp / np.sqrt(2.0))),
        "paper_out_of_order": float(np.mean(zp[1:] < zp[:-1])),
        "flow": p99(z), "flow_max": int(conflict_stats(z).max), "flow_30pct": p99(z30),
        "flow_share_above_half_raw": share_above(z30, np.floor(raw / 2)),
        "flow_quantile_10pct": p99(refit(flow, keys, 0.1, quantile_knots).transform(keys)),
        "flow_normal_target": p99(ndtri(np.clip(z, eps, 1 - eps))),
        "flow_equal_width": p99(refit(flow, keys, 1.0, equal_width_knots).transform(keys)),
        "flow_adaptive_10pct": p99(refit(flow, keys, 0.1, knots.place_knots).transform(keys)),
        "flow_adaptive_all_keys": p99(refit(flow, keys, 1.0, knots.place_knots).transform(keys)),
        "uniform_random": p99(np.random.default_rng(0).random(keys.size)),
        "feature": flow.feature, "bins": flow.bins, "bin_budget": flow.meta["bin_budget"],
        "bin_p99": flow.meta["bin_p99"], "table_bytes": flow.table_bytes,
        "train_s": round(train_s, 2), "paper_train_s": round(paper_s, 2),
        "transform_mkeys_s": round(transform_speed(flow, keys), 1),
    }


def transform_speed(flow: Flow, keys: np.ndarray, reps: int = 5) -> float:
    """Million keys per second of nfl_flow_transform on shuffled keys, one thread, CPU time."""
    from nfl._native import ffi, lib

    x = np.random.default_rng(0).permutation(keys.astype(np.float64))
    z = np.empty_like(x)
    px, pz = ffi.from_buffer("double[]", x), ffi.from_buffer("double[]", z)
    best = np.inf
    for _ in range(reps):
        t = time.thread_time()
        lib.nfl_flow_transform(flow.compiled.handle, px, pz, x.size)
        best = min(best, time.thread_time() - t)
    return x.size / best / 1e6


TRAIN_10M = """
import sys, time, numpy as np
sys.path.insert(0, {root!r})
from {package}.flow_report import lognormal_keys, transform_speed
keys = lognormal_keys({n}, 1)
t = time.perf_counter()
from nfl.flow import Flow
flow = Flow.train(keys, progress=False)
print(time.perf_counter() - t, flow.meta["sample"], flow.bins, flow.meta["bin_budget"], transform_speed(flow, keys),
      flow.table_bytes)
"""


def train_ten_million(reps: int = 3) -> dict:
    """Training time on 10M lognormal keys, each run in a fresh process; the median of reps."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs = []
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", TRAIN_10M.format(root=root, package=__package__, n=TEN_MILLION)],
                             capture_output=True, text=True, check=True)
        runs.append([float(v) for v in out.stdout.split()])
    seconds, sample, bins, budget, speed, size = np.median(np.array(runs), axis=0)
    return {"keys": TEN_MILLION, "sample": int(sample), "bins": int(bins), "bin_budget": int(budget),
            "seconds": round(float(seconds), 2),
            "seconds_runs": [round(r[0], 2) for r in runs], "transform_mkeys_s": round(float(speed), 1),
            "table_bytes": int(size)}


def lookups(n: int, reps: int = 7) -> dict:
    """ns per key of get_many over all keys (shuffled) on a lognormal index, flow on and off.

    Thread CPU time, on and off alternating; the best of reps is the least disturbed
    by the other jobs on the machine, the median is shown beside it.
    """
    import nfl

    keys = lognormal_keys(n, 2)
    flow = Flow.train(keys, progress=False)
    on = nfl.Index.bulk_load(keys, flow=flow)
    off = nfl.Index.bulk_load(keys, flow="off")
    queries = np.random.default_rng(3).permutation(keys)
    times = {"on": [], "off": []}
    for _ in range(reps):
        for name, idx in (("on", on), ("off", off)):
            t = time.thread_time()
            _, found = idx.get_many(queries)
            times[name].append((time.thread_time() - t) / n * 1e9)
            assert found.all()
    best = {k: min(v) for k, v in times.items()}
    median = {k: float(np.median(v)) for k, v in times.items()}
    return {"keys": n, "ns_flow_on": round(best["on"], 1), "ns_flow_off": round(best["off"], 1),
            "speedup": round(best["off"] / best["on"], 2), "median_speedup": round(median["off"] / median["on"], 2),
            "ns_runs": times, "stats_on": on.stats(), "stats_off": off.stats()}


def markdown(rows, ten, look) -> str:
    lines = ["| dataset | raw p99 | paper flow p99 (out of order) | paper, uniform target | spline flow p99 | gain "
             "| spline, 30 % sample (gain) | before: quantile knots, 10 % sample | spline, normal target "
             "| spline, equal-width bins | feature, bins of budget, table | train s (paper) | C M keys/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['raw']:.0f} | {r['paper']:.0f} ({r['paper_out_of_order']:.2%}) "
            f"| {r['paper_uniform']:.0f} | **{r['flow']:.0f}** | {r['raw'] / r['flow']:.1f}x "
            f"| {r['flow_30pct']:.0f} ({r['raw'] / r['flow_30pct']:.1f}x) | {r['flow_quantile_10pct']:.0f} "
            f"| {r['flow_normal_target']:.0f} | {r['flow_equal_width']:.0f} "
            f"| {r['feature']}, {r['bins']:,} of {r['bin_budget']:,}, {r['table_bytes'] / 1024:.0f} KiB "
            f"| {r['train_s']:.1f} ({r['paper_train_s']:.1f}) | {r['transform_mkeys_s']:.0f} |")
    lines += ["\nWhat limits the gain (the flow's feature and bins in every column; p99 <= t needs under 1 % of "
              "the occupied slots above t):\n",
              "| dataset | raw p99 | 2x needs p99 <= | spline flow, 30 % sample | its slots above that "
              "| adaptive knots, 10 % sample | adaptive knots, all keys | uniform random keys (floor) |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['raw']:.0f} | {np.floor(r['raw'] / 2):.0f} | {r['flow_30pct']:.0f} "
            f"| {r['flow_share_above_half_raw']:.2%} | {r['flow_adaptive_10pct']:.0f} "
            f"| {r['flow_adaptive_all_keys']:.0f} | {r['uniform_random']:.0f} |")
    if ten:
        lines.append(f"\nTraining on {ten['keys']:,} lognormal keys ({ten['sample']:,} sampled, {ten['bins']:,} bins "
                     f"of {ten['bin_budget']:,}, "
                     f"table {ten['table_bytes'] / 1024:.0f} KiB): median {ten['seconds']:.1f} s wall of "
                     f"{', '.join(f'{v:.1f}' for v in ten['seconds_runs'])}, fresh processes, torch import included; "
                     f"its C transform runs at {ten['transform_mkeys_s']:.0f} M keys/s on the 10M keys.")
    if look:
        lines.append(f"\nget_many over {look['keys']:,} lognormal keys, shuffled, best of 7 in thread CPU time: "
                     f"flow on {look['ns_flow_on']:.0f} ns/key, off {look['ns_flow_off']:.0f} ns/key, "
                     f"speed-up {look['speedup']:.2f}x (median {look['median_speedup']:.2f}x; depth "
                     f"{look['stats_on']['avg_depth']:.2f} vs {look['stats_off']['avg_depth']:.2f}).")
    return "\n".join(lines)


def parser():
    """The command line: every option with its help."""
    p = usage.Parser(prog=f"{COMMAND}.flow_report", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=usage.positive, default=1_000_000, help="keys per dataset (sampled from the real sets)")
    p.add_argument("--datasets", default=",".join(DEFAULT_SETS),
                   help="comma-separated names: lognormal, a synthetic distribution, a real set or an SOSD file")
    p.add_argument("--seed", type=int, default=1, help="seed of the keys and the samples")
    p.add_argument("--skip-10m", action="store_true", help="skip the training time on 10M keys (3 fresh processes)")
    p.add_argument("--skip-lookups", action="store_true", help="skip the get_many timing, flow on vs off")
    p.add_argument("--json", help="write every figure here")
    return p


def main(argv=None) -> int:
    """Exit status: 0 done, 2 a mistake in the command line or a missing data set (before any work)."""
    p = parser()
    args = p.parse_args(argv)
    if importlib.util.find_spec("torch") is None:
        p.error('training flows needs PyTorch: pip install "nfl[train]"')
    for name in args.datasets.split(","):
        if name != "lognormal":
            try:
                datasets.source(name)
            except (ValueError, FileNotFoundError) as missing:
                p.error(str(missing))
    rows = []
    for name in args.datasets.split(","):
        keys = lognormal_keys(args.n, args.seed) if name == "lognormal" else datasets.load(name, n=args.n, seed=args.seed)
        rows.append(conflicts_row(name, keys))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    ten = None if args.skip_10m else train_ten_million()
    look = None if args.skip_lookups else lookups(args.n)
    print(markdown(rows, ten, look))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"conflicts": rows, "train_10m": ten, "lookups": look, "load": os.getloadavg()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
