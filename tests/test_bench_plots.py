"""The latency CDF plot: x axis clipped at the largest p99.99 shown, derived latencies dashed and labelled."""
import matplotlib.pyplot as plt

from bench import plots


def _run(index, path, method, p9999, outlier):
    cdf = [[30.0, 0.5], [100.0, 0.99], [p9999, 0.9999], [outlier, 1.0]]
    return {"dataset": "d", "workload": "w", "index": index, "path": path, "status": "ok",
            "method": {"latency": method}, "latency_ns": {"UPDATE": {}},
            "latency_all_ns": {"p50": 30.0, "p99": 100.0, "p99.9": p9999 / 2, "p99.99": p9999, "max": outlier}, "latency_cdf_ns": cdf}


def test_cdf_is_clipped_and_derived_lines_are_dashed(tmp_path, monkeypatch):
    results = {"runs": [_run("nfl", "per-op", "timed per op", 2000.0, 5e6),
                        _run("searchsorted", "batch", "derived: batch time / ops in the batch", 900.0, 1e7)]}
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    plots.latency_cdf(results, "d", "w", tmp_path / "cdf.png")
    cdf_ax, tail_ax, _ = figures[0].axes
    assert cdf_ax.get_xlim()[1] == 2000.0 and tail_ax.get_xlim()[1] > 2000.0  # the tail panel keeps its margin
    lines = {line.get_label(): line for line in cdf_ax.get_lines()}
    derived = lines["searchsorted · batch (derived: batch time / ops)"]
    assert derived.get_linestyle() == "--" and lines["nfl · per-op"].get_linestyle() == "-"
    assert (tmp_path / "cdf.png").stat().st_size > 0
