"""The per-op native path: one op at a time in C, each op timed alone, labelled as such everywhere."""
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bench import adapters, native, plots, report, runner
from bench.check import Mismatch
from bench.ops import NAMES, READ, SCAN
from bench.progress import Quiet
from test_bench_runner import MIXED, READ_ONLY, TIMERS, _measure, needs_native, tiny_stream

pytestmark = needs_native


def _loaded(stream, name="afli"):
    adapter = adapters.make([name])[0]
    adapter.load(stream.load_keys, stream.load_values)
    return adapter


def test_a_stream_of_n_ops_yields_n_samples_each_its_own():
    stream = tiny_stream(READ_ONLY, n_ops=1000)
    adapter = _loaded(stream)
    executor = native.Executor(stream)
    bad, batch_ns, each_ns = executor.run(adapter.index._ptr, 0, 1000, 256, time_ops=True, each=True)
    assert bad == -1 and len(each_ns) == 1000 and len(batch_ns) == 4
    assert np.all(each_ns > 0)
    # disjoint spans inside their batch: they fit in it
    assert np.all(np.add.reduceat(each_ns, np.arange(0, 1000, 256)) <= batch_ns)
    _, _, fused_ns = executor.run(adapter.index._ptr, 0, 1000, 256, time_ops=True)
    # the fused path shares a read batch's time equally; timed alone, the ops of a batch differ
    assert len(np.unique(fused_ns[:255])) == 1
    assert len(np.unique(each_ns[:256])) > 1


def test_a_slow_op_shows_up_in_the_tail_at_its_own_place():
    stream = tiny_stream(READ_ONLY, n_keys=2000, n_ops=2000)
    slow = 1234
    stream.op[slow], stream.scan_len[slow] = SCAN, 2000  # walks every key: far slower than a read
    stream.key[slow] = stream.load_keys.min()
    adapter = _loaded(stream)
    _, _, op_ns = native.Executor(stream).run(adapter.index._ptr, 0, 2000, 256, time_ops=True, each=True)
    reads = np.delete(op_ns, slow)
    # in the tail, not smoothed over its batch (a preempted read may still be slower: hence p99, not max)
    assert op_ns[slow] > np.percentile(reads, 99) and op_ns[slow] > 10 * np.median(reads)
    record = _measure(adapter, stream, runner.NATIVE)
    assert record["latency_ns"]["SCAN"]["count"] == 1 and record["latency_ns"]["READ"]["count"] == 1999
    assert record["latency_ns"]["SCAN"]["max"] > record["latency_ns"]["READ"]["p99"]


@pytest.mark.parametrize("name", ["nfl", "afli"])
def test_record_of_the_native_path(name):
    stream = tiny_stream(MIXED)
    timers = {**TIMERS, "native": native.timer()}
    record = runner.measure(adapters.make([name])[0], runner.Workload("tiny", "test", stream), runner.NATIVE,
                            64, timers, Quiet())
    assert record["status"] == "ok" and record["path"] == "per-op-native" and record["throughput_ops_s"] > 0
    assert set(record["latency_ns"]) == {NAMES[c] for c in np.unique(stream.op)}
    assert sum(s["count"] for s in record["latency_ns"].values()) == len(stream.op)
    overhead = record["timer_overhead_ns"]
    assert overhead == timers["native"]["overhead_ns"] > 0
    for op, raw in record["latency_ns"].items():
        net = record["latency_net_ns"][op]
        assert net["count"] == raw["count"] and 0 <= net["p50"] <= raw["p50"]
        assert net["p99.9"] == pytest.approx(max(raw["p99.9"] - overhead, 0), rel=0.01, abs=2)
    assert "timed alone" in record["method"]["latency"] and "fused" not in record["method"]["latency"]
    assert "one op at a time" in record["method"]["throughput"]


def test_native_path_catches_a_wrong_expected_value():
    stream = tiny_stream(MIXED)
    bad = int(np.flatnonzero(stream.op == READ)[200])
    stream.expected[bad] += 1
    with pytest.raises(Mismatch, match="per-op-native") as err:
        _measure(adapters.make(["afli"])[0], stream, runner.NATIVE)
    assert err.value.index == bad


def test_python_peers_are_na_on_the_native_path():
    stream = tiny_stream(READ_ONLY)
    for adapter in adapters.make(["sorteddict", "dict", "pygm", "searchsorted", "pandas"]):
        record = _measure(adapter, stream, runner.NATIVE)
        assert record["status"] == "n/a: " + adapters.NO_NATIVE


def test_pandas_is_a_default_peer_and_runs_reads_on_the_batch_path():
    assert "pandas" in adapters.ALL
    record = _measure(adapters.make(["pandas"])[0], tiny_stream(READ_ONLY), "batch")
    assert record["status"] == "ok" and "get_indexer" in record["method"]["throughput"]
    assert _measure(adapters.make(["pandas"])[0], tiny_stream(MIXED), "batch")["status"].startswith("n/a")


def test_tables_json_and_plots_label_the_native_path(tmp_path, monkeypatch):
    stream = tiny_stream(READ_ONLY)
    timers = {**TIMERS, "native": native.timer()}
    runs = runner.run_all(adapters.make(["afli", "pandas"]), [runner.Workload("tiny", "test", stream)], 64,
                          timers, Quiet())
    assert [(r["index"], r["path"]) for r in runs] == [(i, p) for i in ("afli", "pandas") for p in runner.PATHS]
    results = {"command": "test", "created": "now", "machine": {"cpu": "x", "cores": 2, "memory_bytes": 1, "os": "y"},
               "versions": {"python": "3"}, "timer": timers, "seeds": {"stream": 0},
               "config": {"batch": 64}, "workloads": [], "runs": runs}
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    report.write(results, tmp_path)
    loaded = {(r["index"], r["path"]): r for r in json.loads((tmp_path / "results.json").read_text())["runs"]}
    assert "latency_net_ns" in loaded[("afli", "per-op-native")] and "latency_net_ns" not in loaded[("afli", "batch")]
    md = (tmp_path / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| afli | per-op-native |"))
    assert "timed alone in C" in row and "less it: READ" in row
    assert "fused passes' time shared equally" in next(line for line in md.splitlines()
                                                       if line.startswith("| afli | batch |"))
    assert "**per-op-native path**" in md
    cdf_ax, _, bar_ax = figures[-1].axes
    styles = {line.get_label(): line.get_linestyle() for line in cdf_ax.get_lines()}
    assert styles["afli · per-op-native (each op timed alone in C)"] == "-."
    assert styles["afli · batch (fused pass shared equally)"] == "--"
    assert "afli · per-op-native (each op timed alone in C)" in bar_ax.get_legend_handles_labels()[1]
    assert plots.PATH_HATCH["per-op-native"] not in (plots.PATH_HATCH["batch"], plots.PATH_HATCH["per-op"])
    monkeypatch.undo()
    for figure in figures:
        plt.close(figure)
