"""PNG plots of a results dict: throughput bars per index, latency CDFs on a log axis, p50/p99/p99.9 bars.

Each path is drawn its own way and named in the legend: the batch path
(solid bars, thick lines), the per-op native path (dotted bars, dash-dot
lines: each op timed alone in C) and the per-op Python path (hatched bars,
thin lines)."""
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

#: Bar hatch per path in the throughput plot.
PATH_HATCH = {"batch": "", "per-op-native": "..", "per-op": "//"}
PERCENTILE_BARS = ("p50", "p99", "p99.9")


def _slug(*parts):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(parts))


def _ordered(values):
    return list(dict.fromkeys(values))


def throughput(results, path, per_row=3):
    """Bars of Mops/s per workload (x) and index·path (bars); one panel per dataset and up to
    `per_row` workloads; log scale."""
    runs = results["runs"]
    series = _ordered((r["index"], r["path"]) for r in runs)
    colors = {idx: plt.cm.tab10(i) for i, idx in enumerate(_ordered(r["index"] for r in runs))}
    panels = []
    for dataset in _ordered(r["dataset"] for r in runs):
        names = _ordered(r["workload"] for r in runs if r["dataset"] == dataset)
        panels += [(dataset, names[i : i + per_row]) for i in range(0, len(names), per_row)]
    n_workloads = max(len(names) for _, names in panels)
    width_in = min(22, max(8, 0.3 * len(series) * n_workloads + 3))
    fig, axes = plt.subplots(len(panels), 1, figsize=(width_in, 3.4 * len(panels) + 0.8), squeeze=False)
    width = 0.85 / len(series)
    for ax, (dataset, workloads) in zip(axes[:, 0], panels):
        mine = {(r["workload"], r["index"], r["path"]): r for r in runs if r["dataset"] == dataset}
        for j, (idx, p) in enumerate(series):
            for x, wl in enumerate(workloads):
                run = mine.get((wl, idx, p))
                pos = x - 0.425 + (j + 0.5) * width
                if run and run["status"] == "ok":
                    mops = run["throughput_ops_s"] / 1e6
                    ax.bar(pos, mops, width, color=colors[idx], hatch=PATH_HATCH[p],
                           edgecolor="white", label=f"{idx} · {p}")
                    ax.text(pos, mops, f"{mops:.3g}", rotation=90, ha="center", va="bottom", fontsize=6)
                else:
                    ax.text(pos, 0.02, "n/a", rotation=90, ha="center", va="bottom", fontsize=6,
                            transform=ax.get_xaxis_transform(), color="grey")
        ax.set_yscale("log")
        ax.margins(y=0.25)
        ax.set_xlim(-0.5, len(workloads) - 0.5)
        ax.set_xticks(range(len(workloads)), workloads)
        ax.set_ylabel("Mops/s (log)")
        ax.set_title(f"Throughput, {dataset}: batch path solid, per-op native (C, each op alone) "
                     "dotted, per-op Python hatched", fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
    handles = {}
    for ax in axes[:, 0]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=min(6, len(handles)), fontsize=8)
    legend_in = 0.25 * (1 + (len(handles) - 1) // 6) + 0.15
    fig.tight_layout(rect=(0, legend_in / fig.get_figheight(), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def latency_kind(run):
    """"alone" when each op ran and was timed alone in C (the per-op native path), "measured" when each op
    was timed otherwise, else how its per-op latency was had ("derived", "shared")."""
    if run["path"] == "per-op-native":
        return "alone"
    method = run["method"]["latency"]
    if method.startswith("derived"):
        return "derived"
    return "shared" if "fused" in method and "READ" in run["latency_ns"] else "measured"


#: Line style by latency kind; derived and shared latencies are not one op's own time.
KIND_STYLE = {"measured": "-", "derived": "--", "shared": "--", "alone": "-."}
KIND_LABEL = {"measured": "", "derived": " (derived: batch time / ops)", "shared": " (fused pass shared equally)",
              "alone": " (each op timed alone in C)"}
PATH_WIDTH = {"batch": 2.0, "per-op-native": 1.5, "per-op": 1.0}


def _series_label(run):
    return f"{run['index']} · {run['path']}{KIND_LABEL[latency_kind(run)]}"


def percentile_bars(ax, runs, colors):
    """Bars of p50, p99 and p99.9 of all ops per index·path (log y), each bar's value written on it."""
    width = 0.85 / max(len(runs), 1)
    for j, r in enumerate(runs):
        kind = latency_kind(r)
        xs = [x - 0.425 + (j + 0.5) * width for x in range(len(PERCENTILE_BARS))]
        ys = [r["latency_all_ns"][p] for p in PERCENTILE_BARS]
        ax.bar(xs, ys, width, color=colors[r["index"]], hatch=PATH_HATCH[r["path"]], edgecolor="white",
               alpha=0.55 if kind in ("derived", "shared") else 1.0, label=_series_label(r))
        for x, y in zip(xs, ys):
            ax.text(x, y, f"{y:,.0f}", rotation=90, ha="center", va="bottom", fontsize=6)
    ax.set(yscale="log", ylabel="ns per op (log)")
    ax.set_title("p50 / p99 / p99.9 of all ops, colours as in the CDF\nsolid: batch, dotted: per-op native (C)\n"
                 "hatched: per-op Python; faded: not timed per op", fontsize=9)
    ax.set_xticks(range(len(PERCENTILE_BARS)), PERCENTILE_BARS)
    ax.margins(y=0.3)
    ax.grid(axis="y", which="both", alpha=0.3)


def latency_cdf(results, dataset, workload, path):
    """Per-op latency of all ops: CDF (log x), its tail 1 - CDF (log-log), one line per index·path, and
    p50/p99/p99.9 bars.

    The CDF's x axis ends at the largest p99.99 of the runs shown (one
    outlier would otherwise squeeze the body into a corner; the tail panel
    keeps every point).  Thick lines: the batch path, dash-dot: the per-op
    native path (each op timed alone in C), thin: the per-op Python path;
    dashed and labelled: latencies derived from batch times or shared
    across a fused pass rather than timed per op.
    """
    runs = [r for r in results["runs"] if (r["dataset"], r["workload"]) == (dataset, workload)
            and r["status"] == "ok"]
    colors = {idx: plt.cm.tab10(i) for i, idx in enumerate(_ordered(r["index"] for r in results["runs"]))}
    fig, (cdf_ax, tail_ax, bar_ax) = plt.subplots(1, 3, figsize=(18, 4.5))
    for r in runs:
        points = r["latency_cdf_ns"]
        xs = [p[0] for p in points]
        fs = [p[1] for p in points]
        kind = latency_kind(r)
        style = dict(color=colors[r["index"]], linestyle=KIND_STYLE[kind], linewidth=PATH_WIDTH[r["path"]],
                     label=_series_label(r))
        cdf_ax.step(xs, fs, where="post", **style)
        tail = [(x, 1 - f) for x, f in points if f < 1]
        if tail:
            tail_ax.step([t[0] for t in tail], [t[1] for t in tail], where="post", **style)
    right = max((r["latency_all_ns"]["p99.99"] for r in runs), default=None)
    cdf_ax.set(xscale="log", xlabel="latency per op (ns, log)", ylabel="fraction of ops ≤ x", ylim=(0, 1.01),
               title=f"Latency CDF, {dataset} · {workload}")
    if right:
        cdf_ax.set_xlim(right=right)
        cdf_ax.set_title(f"Latency CDF, {dataset} · {workload}\n(x up to the largest p99.99, {right:,.0f} ns)",
                         fontsize=10)
    tail_ax.set(xscale="log", yscale="log", xlabel="latency per op (ns, log)", ylabel="fraction of ops > x (log)",
                title="Tail (1 − CDF), every point")
    for ax in (cdf_ax, tail_ax):
        ax.grid(which="both", alpha=0.3)
    cdf_ax.legend(fontsize=7, title="thick: batch path, dash-dot: per-op native (C), thin: per-op Python;\n"
                  "dashed: not timed per op", title_fontsize=7)
    percentile_bars(bar_ax, runs, colors)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(results, out_dir):
    """All plots of `results` into out_dir; returns their paths."""
    paths = [out_dir / "throughput.png"]
    throughput(results, paths[0])
    for dataset, workload in _ordered((r["dataset"], r["workload"]) for r in results["runs"]):
        if any(r["status"] == "ok" for r in results["runs"] if (r["dataset"], r["workload"]) == (dataset, workload)):
            paths.append(out_dir / f"latency_{_slug(dataset, workload)}.png")
            latency_cdf(results, dataset, workload, paths[-1])
    return paths
