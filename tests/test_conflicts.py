"""The slot counts the auto switch, flow training and `nfl analyze` judge are the built tree's.

nfl.conflicts reads them from the C core (nfl_slot_counts), which fits the
model the build fits; here they are compared with the root of an index built
over the same keys (nfl_root_slot_counts), on the key set where a Python copy
of the model once drifted and on every key set the tests build from.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nfl
from index_model import KEY_STRATEGIES, canonical, initial_keys
from nfl import conflicts
from nfl._native import ffi, lib


def built_root_counts(idx) -> np.ndarray:
    """Keys per occupied root slot of a built index, read off the tree."""
    room = max(2 * len(idx) + 2, 2)
    per_slot = np.zeros(room, dtype=np.uint32)
    capacity = lib.nfl_root_slot_counts(idx._ptr, ffi.from_buffer("uint32_t[]", per_slot), room)
    assert capacity > 0
    counts = per_slot[:capacity]
    return counts[counts > 0].astype(np.int64)


def assert_judged_as_built(keys, flow=None):
    idx = nfl.Index.bulk_load(keys, flow=flow if flow is not None else "off")
    assert np.array_equal(conflicts.model_counts(keys, flow), built_root_counts(idx))


def test_keys_spanning_more_than_dbl_max_are_judged_as_built():
    keys = np.array([-1.7e308, 0.0, 1.7e308])
    assert_judged_as_built(keys)
    assert conflicts.model_counts(keys).tolist() == [1, 1, 1]  # the tree separates them
    assert conflicts.conflict_stats(keys).max == 1  # what `nfl analyze` prints


@pytest.mark.parametrize("dtype", ["uint64", "int64", "float64"])
@pytest.mark.parametrize("kind", ["lognormal", "clustered", "consecutive"])
@pytest.mark.parametrize("n", [1, 2, 50, 3000])
def test_state_machine_key_sets_are_judged_as_built(kind, n, dtype):
    assert_judged_as_built(initial_keys(kind, n, 11, dtype))


@pytest.mark.parametrize("dtype", ["uint64", "int64", "float64"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_key_set_is_judged_as_built(dtype, data):
    raw = data.draw(st.lists(KEY_STRATEGIES[dtype], min_size=0, max_size=300))
    keys = np.unique(np.array([canonical(k, dtype) for k in raw], dtype=dtype))
    if dtype == "float64":
        keys = np.unique(np.where(keys == 0.0, 0.0, keys))  # -0.0 and 0.0 are one key
    assert_judged_as_built(keys)


def test_the_switch_judges_the_tree_it_builds():
    """The counts choose_flow compares, with and without a flow, are the two trees' roots."""
    pytest.importorskip("torch")
    keys = initial_keys("lognormal", 30_000, 5, "uint64")
    flow = nfl.Flow.train(keys, sample=0.5, epochs=2, seed=0, progress=False)
    assert_judged_as_built(keys)
    assert_judged_as_built(keys, flow)
    choice = nfl.switch.choose_flow(keys, flow)
    assert choice.tail_conflicts_flow == conflicts.stats_of(built_root_counts(nfl.Index.bulk_load(keys, flow=flow))).p99


def test_workload_key_sets_are_judged_as_built():
    from workloads import datasets

    for name in datasets.DISTRIBUTIONS:
        assert_judged_as_built(datasets.generate(name, 20_000, seed=1))
    assert_judged_as_built(datasets.load("default"))


def test_nfl_analyze_reports_the_built_trees_conflicts(tmp_path, capsys):
    from nfl import cli

    keys = np.array([-1.7e308, 0.0, 1.7e308])
    path = tmp_path / "wide_float64"
    with open(path, "wb") as f:
        f.write(np.uint64(keys.size).tobytes())
        f.write(keys.tobytes())
    assert cli.main(["analyze", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    raw = next(line for line in out.splitlines() if line.startswith("raw keys"))
    assert raw.split()[2] == "1"  # max conflict degree: the three keys sit in three slots, as built


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=400))
def test_tail_degree_is_numpys_percentile(counts):
    a = np.array(counts, dtype=np.int64)
    got = conflicts.tail_degree(a)
    assert type(got) is float and got == np.percentile(a, conflicts.TAIL_PERCENT)
    assert a.tolist() == counts  # the counts are left as they were
