"""The benchmark runner on tiny hand-built op streams: correctness checks, n/a, records, reports."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from bench import adapters, report, runner
from bench.check import Mismatch
from bench.ops import NAMES, READ, RMW, SCAN
from bench.progress import Quiet

TIMERS = {"native": {"ticks_per_ns": 1.0, "overhead_ns": 0.0}, "python": {"overhead_ns": 0.0}}
READ_ONLY = (1, 0, 0, 0, 0, 0)
MIXED = (0.5, 0.2, 0.1, 0.05, 0.1, 0.05)
POINT = (0.5, 0.2, 0.1, 0, 0.1, 0.1)


def tiny_stream(mix, n_keys=1000, n_ops=3000, seed=0):
    """An op stream with the workloads layout; expected values from replaying it on a dict."""
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, 2**62, 3 * n_keys, dtype=np.uint64))
    rng.shuffle(keys)
    load, held = keys[:n_keys], keys[n_keys:]
    values = np.arange(n_keys, dtype=np.int64)
    state = dict(zip(load.tolist(), values.tolist()))
    op = rng.choice(len(NAMES), n_ops, p=mix).astype(np.uint8)
    key = np.where(op == 2, held[np.arange(n_ops) % len(held)], load[rng.integers(0, n_keys, n_ops)])
    value = rng.integers(0, 10**9, n_ops)
    scan_len = np.where(op == SCAN, rng.integers(1, 50, n_ops), 0)
    expected = np.full(n_ops, -1, dtype=np.int64)
    for i, (c, k, v) in enumerate(zip(op.tolist(), key.tolist(), value.tolist())):
        if c in (READ, RMW):
            expected[i] = state.get(k, -1)
        if c in (1, 2, RMW):
            state[k] = v
        elif c == 5:
            state.pop(k, None)
    return SimpleNamespace(load_keys=load, load_values=values, op=op, key=key.astype(np.uint64),
                           value=value, scan_len=scan_len, expected=expected, meta={})


def _native_available():
    try:
        import nfl
        from nfl._native import lib  # noqa: F401

        nfl.Index.bulk_load(np.arange(10, dtype=np.uint64), flow="off")
        return True
    except Exception:  # noqa: BLE001 - any failure means: not built yet
        return False


needs_native = pytest.mark.skipif(not _native_available(), reason="nfl._native is not built")
PEERS = ["sorteddict", "dict", "pygm", "searchsorted"]


def _measure(adapter, stream, path):
    return runner.measure(adapter, runner.Workload("tiny", "test", stream), path, 64, TIMERS, Quiet())


class OffByOne(adapters.SortedDictAdapter):
    """A deliberately wrong peer: every read returns value + 1."""

    name = "off-by-one"

    def handlers(self):
        h = super().handlers()
        get = h.get
        h.get = lambda k: None if get(k) is None else get(k) + 1
        return h


def test_wrong_adapter_fails_loudly_at_the_first_wrong_read():
    stream = tiny_stream(MIXED)
    first_hit = int(np.flatnonzero(np.isin(stream.op, (READ, RMW)) & (stream.expected >= 0))[0])
    with pytest.raises(Mismatch, match="off-by-one") as err:
        _measure(OffByOne(), stream, "per-op")
    assert err.value.index == first_hit


@pytest.mark.parametrize("path", ["batch", "per-op"])
@needs_native
def test_native_and_python_paths_catch_a_wrong_expected_value(path):
    stream = tiny_stream(MIXED)
    bad = int(np.flatnonzero(stream.op == READ)[200])
    stream.expected[bad] += 1
    with pytest.raises(Mismatch) as err:
        _measure(adapters.make(["afli"])[0], stream, path)
    assert err.value.index == bad
    assert f"expected {stream.expected[bad]}" in str(err.value)


def test_read_only_peers_are_na_on_a_write_workload():
    stream = tiny_stream(MIXED)
    for adapter in adapters.make(["pygm", "searchsorted", "dict"]):
        for path in runner.PATHS:
            record = _measure(adapter, stream, path)
            assert record["status"].startswith("n/a: ")
            assert record["throughput_ops_s"] is None and record["latency_ns"] == {}
    assert "read-only" in _measure(adapters.make(["pygm"])[0], stream, "per-op")["status"]
    assert "scan" in _measure(adapters.make(["dict"])[0], stream, "per-op")["status"]
    assert "no batch API" in _measure(adapters.make(["sorteddict"])[0], stream, "batch")["status"]


def test_every_index_runs_what_it_can_and_agrees_with_the_stream():
    names = PEERS + (["afli"] if _native_available() else [])
    for mix in (READ_ONLY, POINT, MIXED):
        stream = tiny_stream(mix)
        for adapter in adapters.make(names):
            for path in runner.PATHS:
                record = _measure(adapter, stream, path)
                if record["status"] == "ok":
                    assert record["throughput_ops_s"] > 0
                    present = {NAMES[c] for c in np.unique(stream.op)}
                    assert set(record["latency_ns"]) == present


def test_derived_per_op_latency_adds_up_to_batch_time():
    stream = tiny_stream(READ_ONLY, n_ops=1000)
    adapter = adapters.make(["searchsorted"])[0]
    adapter.load(stream.load_keys, stream.load_values)
    batch_ns, _ = runner.replay(adapter, stream, "batch", 64, False)
    op_ns = runner._per_op_from_batches(stream, 64, batch_ns)
    assert len(op_ns) == 1000 and op_ns.sum() == pytest.approx(batch_ns.sum())


@needs_native
def test_native_per_op_ticks_sum_to_batch_ticks():
    from bench import native

    stream = tiny_stream(MIXED)
    adapter = adapters.make(["afli"])[0]
    adapter.load(stream.load_keys, stream.load_values)
    bad, batch_ns, op_ns = native.Executor(stream).run(adapter.index._ptr, 0, 3000, 256, time_ops=True)
    assert bad == -1 and len(batch_ns) == 12
    sums = np.add.reduceat(op_ns, np.arange(0, 3000, 256))
    assert np.all(sums <= batch_ns) and np.all(batch_ns - sums < 10_000)


@needs_native
def test_native_executor_rejects_an_unknown_op_code():
    from bench import native

    stream = tiny_stream(READ_ONLY, n_ops=10)
    stream.op[3] = 9
    adapter = adapters.make(["afli"])[0]
    adapter.load(stream.load_keys, stream.load_values)
    with pytest.raises(RuntimeError, match="code -3"):
        native.Executor(stream).run(adapter.index._ptr, 0, 10, 4)


def test_results_json_schema_and_reports(tmp_path):
    stream = tiny_stream(POINT)
    names = PEERS + (["nfl", "afli"] if _native_available() else [])
    runs = runner.run_all(adapters.make(names), [runner.Workload("tiny", "test", stream)], 64, TIMERS, Quiet())
    results = {"command": "test", "created": "now", "machine": {"cpu": "x", "cores": 2, "memory_bytes": 1, "os": "y"},
               "versions": {"python": "3"}, "timer": TIMERS, "seeds": {"stream": 0},
               "config": {"batch": 64}, "workloads": [], "runs": runs}
    report.write(results, tmp_path)
    loaded = json.loads((tmp_path / "results.json").read_text())
    assert len(loaded["runs"]) == len(names) * len(runner.PATHS)
    for run in loaded["runs"]:
        assert {"index", "workload", "dataset", "path", "ops", "throughput_ops_s", "status", "latency_ns"} <= set(run)
        assert run["path"] in ("batch", "per-op-native", "per-op")
        assert run["status"] == "ok" or run["status"].startswith("n/a: ")
        for figures in run["latency_ns"].values():
            assert {"p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"} <= set(figures)
            assert figures["p50"] <= figures["p99"] <= figures["p99.99"] <= figures["max"]
    statuses = {(r["index"], r["path"]): r["status"] for r in loaded["runs"]}
    assert statuses[("dict", "per-op")] == "ok" and statuses[("pygm", "per-op")].startswith("n/a")
    ycsb = (tmp_path / "ycsb.txt").read_text()
    assert "[OVERALL], Throughput(ops/sec), " in ycsb and "[READ], 99thPercentileLatency(us), " in ycsb
    assert "[READ], 99.9PercentileLatency(us), " in ycsb
    assert (tmp_path / "throughput.png").stat().st_size > 0
    assert (tmp_path / "latency_test_tiny.png").stat().st_size > 0
    assert "| dict | per-op |" in (tmp_path / "report.md").read_text()
