"""YCSB records as values: the records workload, the object-valued adapters on both paths, the report."""
import json

import numpy as np
import pytest

pytest.importorskip("numba")
pytest.importorskip("BTrees")

from bench import records as bench_records  # noqa: E402
from bench import runner  # noqa: E402
from bench.check import Mismatch  # noqa: E402
from bench.ops import INSERT, READ, RMW, UPDATE  # noqa: E402
from bench.progress import Quiet  # noqa: E402
from workloads import records, stream  # noqa: E402

TIMERS = {"native": {"ticks_per_ns": 1.0, "overhead_ns": 0.0}, "python": {"overhead_ns": 0.0}}
KEYS = np.arange(1, 3001, dtype=np.uint64) * 977  # 3,000 keys


def ycsb(workload, seed=1, keys=KEYS, ops=2000, **props):
    overrides = {"recordcount": "0", **{k: str(v) for k, v in props.items()}}
    return stream.build(workload, keys, seed, overrides=overrides, n_ops=ops)


def test_records_are_a_function_of_the_value_in_both_layouts():
    values = np.array([7, 8, 7, 2**62 - 1])
    made = records.records(values, 10, 100)
    assert all(type(r) is tuple and len(r) == 10 and all(type(f) is bytes and len(f) == 100 for f in r)
               for r in made)
    assert made[0] == made[2] and made[0] != made[1]
    assert all(32 <= b <= 126 for r in made for f in r for b in f)  # printable, as YCSB's
    assert np.array_equal(made, records.records(values, 10, 100))
    joined = records.records(values, 3, 5, layout="bytes")
    assert [len(b) for b in joined] == [15] * 4 and joined[0] == joined[2]
    assert [b"".join(r) for r in records.records(values, 3, 5)] == joined.tolist()
    with pytest.raises(ValueError, match="layout"):
        records.records(values, layout="dict")
    with pytest.raises(ValueError, match="at least 1"):
        records.records(values, 0, 100)


def test_record_stream_is_deterministic_from_its_seed():
    a, b = records.RecordStream(ycsb("workloada")), records.RecordStream(ycsb("workloada"))
    assert a.describe() == "10x100-byte tuple records"
    assert np.array_equal(a.load_values, b.load_values) and np.array_equal(a.value, b.value)
    other = records.RecordStream(ycsb("workloada", seed=2))
    assert not np.array_equal(a.load_values, other.load_values)


def test_fields_come_from_the_properties_and_only_constant_lengths():
    s = records.RecordStream(ycsb("workloadc", fieldcount=3, fieldlength=7))
    assert (s.fieldcount, s.fieldlength) == (3, 7)
    assert {tuple(map(len, r)) for r in s.load_values} == {(7, 7, 7)}
    joined = records.RecordStream(ycsb("workloadc", fieldcount=3, fieldlength=7), layout="bytes")
    assert {len(r) for r in joined.load_values} == {21}
    with pytest.raises(ValueError, match="constant"):
        records.RecordStream(ycsb("workloadc", fieldlengthdistribution="zipfian"))


def test_expected_values_are_the_objects_the_last_write_stored():
    """Replaying the record stream on a dict model: every read sees its expected object, by identity."""
    s = records.RecordStream(ycsb("workloadf", keys=KEYS[:300], ops=3000))  # reads and read-modify-writes, hot keys
    model = dict(zip(s.load_keys.tolist(), s.load_values))
    reads = 0
    for i, (c, k) in enumerate(zip(s.op.tolist(), s.key.tolist())):
        if c in (READ, RMW):
            assert model.get(k) is s.expected_values[i]
            reads += 1
        if c in (UPDATE, INSERT, RMW):
            model[k] = s.value[i]
    assert reads > 1000
    s.release()
    assert s.expected_values[np.flatnonzero(s.op == READ)[0]] is not None  # rebuilt on use


def _measure(adapter, s, path, batch=64):
    return runner.measure(adapter, runner.Workload("tiny", "test", s), path, batch, TIMERS, Quiet())


@pytest.mark.parametrize("workload", ["workloada", "workloadc", "workloadf"])
def test_every_object_peer_agrees_with_the_stream_on_both_paths(workload):
    s = records.RecordStream(ycsb(workload, keys=KEYS[:500], ops=1500, fieldcount=4, fieldlength=20))
    for adapter in bench_records.make(list(bench_records.ALL)):
        for path in bench_records.PATHS:
            run = _measure(adapter, s, path)
            assert run["status"] == "ok", (adapter.name, path, run["status"])
            assert set(run["latency_ns"]) >= {"READ"}
            assert run["throughput_ops_s"] > 0
        assert _measure(adapter, s, runner.NATIVE)["status"] == "n/a: the native executor replays int64 values only"
        adapter.release()


def _run_groups(s, batches):
    """Replays groups on a dict (batch read, then batch write, per group); the reads' results by op position."""
    model, got = dict(zip(s.load_keys.tolist(), s.load_values)), {}
    for groups in batches:
        for g in groups:
            got.update(zip(g.reads.tolist(), map(model.get, g.read_list)))
            model.update(g.write_pairs)
    return got


def test_batch_groups_keep_the_streams_order():
    """A read of a key written earlier in its batch starts a new group, so it sees that write;
    one group per batch (all reads first) would not."""
    s = records.RecordStream(ycsb("workloada", keys=KEYS[:20], ops=1000, fieldcount=1, fieldlength=8))
    plan = bench_records.batch_plan(s, 256)
    assert any(len(groups) > 1 for groups in plan)  # 20 hot keys: reads after writes in every batch
    got = _run_groups(s, plan)
    assert sorted(got) == np.flatnonzero(s.op == READ).tolist()
    assert all(got[i] is s.expected_values[i] for i in got)
    merged = [[bench_records.Group(np.concatenate([g.reads for g in gs]), None, sum((g.read_list for g in gs), []),
                                   None, None, sum((g.write_pairs for g in gs), []))] for gs in plan]
    assert any(v is not s.expected_values[i] for i, v in _run_groups(s, merged).items())
    assert _measure(bench_records.DictObjects(), s, "batch", 256)["status"] == "ok"


class Copying(bench_records.SortedDictObjects):
    """A wrong peer: returns an equal copy of the record, not the object stored."""

    name = "copying"

    def read_group(self, group):
        return [None if v is None else tuple(list(v)) for v in super().read_group(group)]

    def handlers(self):
        h = super().handlers()
        get = h.get
        h.get = lambda k: None if get(k) is None else tuple(list(get(k)))
        return h


@pytest.mark.parametrize("path", bench_records.PATHS)
def test_a_peer_returning_copies_fails_the_run(path):
    s = records.RecordStream(ycsb("workloadc", keys=KEYS[:200], ops=500, fieldcount=2, fieldlength=4))
    with pytest.raises(Mismatch, match="copying") as err:
        _measure(Copying(), s, path)
    assert s.op[err.value.index] == READ and "id 0x" in str(err.value)


def test_int_only_indexes_are_reported_not_applicable():
    s = records.RecordStream(ycsb("workloadc", keys=KEYS[:100], ops=100, fieldcount=1, fieldlength=1))
    pygm, = bench_records.make(["pygm"])
    assert _measure(pygm, s, "per-op")["status"] == "n/a: measured with int64 values only"
    with pytest.raises(ValueError, match="unknown index"):
        bench_records.make(["nope"])


def test_btrees_peer_is_the_object_tree_of_the_key_dtype():
    for dtype, module in (("uint64", "QOBTree"), ("int64", "LOBTree"), ("float64", "OOBTree")):
        adapter = bench_records.BTreesObjects()
        value = (b"x",)
        adapter.load(np.array([1, 2], dtype=dtype), np.array([value, None], dtype=object)[:2])
        assert type(adapter.map).__name__ == module and adapter.map[1] is value


def test_runner_reports_records_rows(tmp_path, monkeypatch):
    from bench import __main__ as cli
    from bench import report

    monkeypatch.setattr(report.plots, "write", lambda results, out: [])  # plots: tests/test_bench_plots.py

    out = tmp_path / "records"
    assert cli.main(["run", "--dataset", "uniform", "--n", "2000", "--ops", "1000", "--workload", "workloada,workloadc",
                     "--values", "records", "-p", "fieldcount=10", "-p", "fieldlength=100",
                     "--indexes", "nfl,afli,sorteddict,dict,btrees,searchsorted", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["values"] == "records"
    for workload in ("workloada", "workloadc"):
        name = f"{workload}, 10x100-byte tuple records"
        ok = {(r["index"], r["path"]) for r in results["runs"] if r["workload"] == name and r["status"] == "ok"}
        assert ok == {(i, p) for i in bench_records.ALL for p in bench_records.PATHS}
        assert ("searchsorted", "batch") not in ok
        assert f"uniform · {name}" in (out / "report.md").read_text()
    report = (out / "report.md").read_text()
    for index in bench_records.ALL:
        assert f"| {index} | batch |" in report and f"| {index} | per-op |" in report


def test_arena_estimate_gives_every_figure():
    from bench import arena

    out = arena.measure(n=600, length=16, repeat=1, batch=64)
    for figure in ("read batch", "read batch, fused lookup", "read per op", "write batch", "snapshot dump+load"):
        assert out[f"{figure}: object values"] > 0 and out[f"{figure}: arena"] > 0
    assert out["memory per value: arena"] == 24 and out["memory per value: object values"] >= 16 + 33
