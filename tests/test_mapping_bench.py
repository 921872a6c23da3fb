"""The mapping peers of the benchmark: btrees and pandas adapters, and bench.perop's table."""
import numpy as np
import pytest

from bench import adapters, perop, runner
from bench.ops import NAMES, READ
from test_bench_runner import MIXED, POINT, READ_ONLY, _measure, tiny_stream


@pytest.mark.parametrize("name", ["btrees", "pandas"])
def test_peer_runs_what_it_can_and_agrees_with_the_stream(name):
    for mix in (READ_ONLY, POINT, MIXED):
        stream = tiny_stream(mix)
        adapter = adapters.make([name])[0]
        for path in runner.PATHS:
            record = _measure(adapter, stream, path)
            runs = (name == "btrees" and path == "per-op"
                    or name == "pandas" and mix == READ_ONLY and path != runner.NATIVE)
            assert (record["status"] == "ok") == runs, (mix, path, record["status"])
            if runs:
                assert set(record["latency_ns"]) == {NAMES[c] for c in np.unique(stream.op)}


def test_pandas_batch_path_checks_every_read():
    stream = tiny_stream(READ_ONLY)
    bad = int(np.flatnonzero(stream.op == READ)[10])
    stream.expected[bad] += 1
    with pytest.raises(Exception, match="expected"):
        _measure(adapters.make(["pandas"])[0], stream, "batch")


@pytest.mark.parametrize("dtype, module", [("uint64", "QLBTree"), ("int64", "LLBTree"), ("float64", "OLBTree")])
def test_btrees_module_by_key_dtype(dtype, module):
    adapter = adapters.make(["btrees"])[0]
    keys = np.array([3, 1, 2], dtype=dtype)
    adapter.load(keys, np.array([30, 10, 20]))
    assert adapter.label == f"BTrees.{module}" and list(adapter.map.items()) == [(1, 10), (2, 20), (3, 30)]
    assert adapter.handlers().scan(2, 5) == [(2, 20), (3, 30)]


def test_perop_prints_every_row_for_every_peer(capsys):
    perop.main(["--n", "2000", "--ops", "500", "--repeat", "1", "--datasets", "uniform"])
    out = capsys.readouterr().out
    assert out.startswith("# python -m bench.perop --n 2000")
    for _, row, _, _, peers in perop.ROWS:
        line = next(x for x in out.splitlines() if x.startswith(f"| {row} |"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 1 + 4 + 3
        assert all(c != "–" for c in cells[1:1 + len(peers)])  # each peer that has the op was timed
        assert ("–" in cells) == (len(peers) < 4)


def test_perop_rows_leave_each_structure_as_loaded():
    keys = np.arange(0, 4000, 2, dtype=np.uint64)
    fresh = np.arange(1, 400, 2, dtype=np.uint64)
    maps = {"dict": dict.fromkeys(keys.tolist(), 0)}
    before = dict(maps["dict"])
    perop.measure(maps, keys, fresh, 100, 2, 0)
    assert maps["dict"].keys() == before.keys()



def test_perop_prints_what_bounds_the_irange_row(capsys):
    perop.main(["--n", "2000", "--ops", "500", "--repeat", "1", "--datasets", "uniform"])
    out = capsys.readouterr().out
    head = next(x for x in out.splitlines() if x.startswith("| irange, ns per call |"))
    line = next(x for x in out.splitlines() if x.startswith("| 100 keys |"))
    names = [c.strip() for c in head.strip("|").split("|")][1:]
    cells = [c.strip() for c in line.strip("|").split("|")][1:]
    assert names[:4] == ["SortedDict irange", "nfl irange", "nfl read only", "100 new ints"]
    assert all(float(c.replace(",", "")) > 0 for c in cells[:4]) and all(c.endswith("x") for c in cells[4:])


def test_irange_floor_times_the_irange_row_ranges():
    import nfl
    from sortedcontainers import SortedDict

    keys = np.arange(0, 40_000, 4, dtype=np.uint64)
    idx = nfl.Index.bulk_load(keys, np.arange(keys.size), flow="off")
    floor = perop.irange_floor(idx, SortedDict.fromkeys(keys.tolist(), 0), keys, keys[:100] + 1, 500, 2, 0)
    assert set(floor) == {"SortedDict irange", "nfl irange", "nfl read only", "100 new ints"}
    assert all(v > 0 for v in floor.values())
