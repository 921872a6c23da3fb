"""The tree stays shallow and free of long sorted arrays on the hard key sets (workloads.hard).

Each set once made the tree degenerate (issue 17): dense runs of ids over the
whole uint64 range (thousands of dense nodes: a double cannot separate ids
closer than 2048), floats across many magnitudes grown by inserts (depth in
the hundreds), keys past a flow's trained range (all one clamped z: one dense
node taking every insert), descending inserts.  The bounds are on structure
(stats()), never on time; contents are checked against sorted arrays.
"""
import numpy as np
import pytest
from sortedcontainers import SortedDict

import nfl
from nfl.flow import Flow, layout
from workloads import hard


def check_contents(index, keys):
    """index holds exactly keys (any order), each with its position in sorted order as value."""
    keys = np.sort(keys)
    assert len(index) == keys.size
    values, found = index.get_many(keys)
    assert found.all()
    assert np.array_equal(np.fromiter(index.keys(), dtype=keys.dtype, count=keys.size), keys)
    return values


def check_stats(index):
    index._check()  # every structural invariant (nfl_check)
    s = index.stats()
    assert sum(s["depth_histogram"].values()) == len(index)
    assert max(s["depth_histogram"], default=0) == s["max_depth"]
    assert s["max_dense_node"] <= s["dense_keys"] <= len(index)
    return s


def flat_flow(hi):
    """A flow linear over [0, hi] and flat past it (as a trained flow is past its range)."""
    return Flow(layout.pack(layout.Spline("linear", 1.0 / hi, 0.0, np.array([0.0, 0.5, 1.0]), np.array([1.0, 3.0]))))


@pytest.mark.parametrize("flow", ["off", "on"])
def test_dense_runs_over_the_uint64_range(flow):
    keys = np.unique(hard.dense_runs(np.random.default_rng(1), 200_000))
    index = nfl.Index.bulk_load(keys, flow=flat_flow(1e12) if flow == "on" else "off")
    s = check_stats(index)
    assert s["dense_keys"] == 0
    assert s["avg_depth"] <= 1.25 and s["max_depth"] <= 3  # the runs stay in the root's pieces
    assert s["memory_bytes"] <= 50 * keys.size
    check_contents(index, keys)


def test_dense_runs_half_loaded_half_inserted():
    """The issue's case 3 in small: the inserted half of each run lands beside the loaded half."""
    rng = np.random.default_rng(6)
    keys = np.unique(hard.dense_runs(rng, 400_000))
    order = rng.permutation(keys.size)
    index = nfl.Index.bulk_load(np.sort(keys[order[: keys.size // 2]]), flow="auto")
    for batch in np.array_split(keys[order[keys.size // 2:]], 40):
        index.put_many(batch, np.zeros(batch.size, dtype=np.int64))
    s = check_stats(index)
    assert s["avg_depth"] <= 1.5 and s["memory_bytes"] <= 50 * keys.size
    check_contents(index, keys)


@pytest.mark.parametrize("dtype", ["int64", "float64"])
def test_dense_runs_of_other_key_types(dtype):
    raw = np.unique(hard.dense_runs(np.random.default_rng(2), 100_000))
    keys = np.unique(raw.view(np.int64) if dtype == "int64" else raw.astype(np.float64))
    index = nfl.Index.bulk_load(keys, flow="off")
    s = check_stats(index)
    assert s["avg_depth"] <= (1.25 if dtype == "int64" else 1.5) and s["dense_keys"] == 0
    check_contents(index, keys)


def test_wide_floats_grown_by_inserts():
    rng = np.random.default_rng(3)
    keys = np.unique(hard.wide_floats(rng, 100_000))
    index = nfl.Index(key_dtype="float64")
    for batch in np.array_split(rng.permutation(keys), 20):
        index.put_many(batch, np.zeros(batch.size, dtype=np.int64))
    s = check_stats(index)
    assert s["avg_depth"] <= 1.5 and s["max_depth"] <= 4
    assert s["memory_bytes"] <= 60 * keys.size
    check_contents(index, keys)


@pytest.mark.parametrize("side", ["above", "below"])
def test_inserts_past_the_flows_range_get_a_model_of_their_own(side):
    rng = np.random.default_rng(4)
    base = np.unique(rng.integers(10**9, 2 * 10**9, 20_000, dtype=np.uint64))
    index = nfl.Index.bulk_load(base, flow=flat_flow(2e9))
    assert index.flow is not None
    new = hard.outside(base, 200_000, side, rng)
    for batch in np.array_split(new, 50):
        index.put_many(batch, np.zeros(batch.size, dtype=np.int64))
    s = check_stats(index)
    assert s["max_dense_node"] < 8  # no sorted array takes the inserts
    assert s["avg_depth"] <= 3.0 and s["max_depth"] <= 6
    check_contents(index, np.concatenate([base, new]))


@pytest.mark.parametrize("flow", ["auto", "off"])
def test_long_runs_of_inserts_below_the_minimum(flow):
    """The issue's case 1 in small: 4x the loaded keys above the maximum, then 4x below the minimum.

    The keys below sit ~10^5 times as densely as the loaded ones: the node
    they fall under (all the loaded keys, once the root was rebuilt over the
    keys above) must hand them a subtree of their own, not spread them over
    its own slots and chain children under them as they keep coming.
    """
    rng = np.random.default_rng(1)
    base = np.unique((rng.lognormal(0.0, 2.0, 50_000) * 1e12).astype(np.uint64))
    values = rng.integers(0, 2**62, base.size)
    index = nfl.Index.bulk_load(base, values, flow=flow)
    assert (index.flow is not None) == (flow == "auto")
    ref = SortedDict(zip(base.tolist(), values.tolist()))
    above = hard.outside(base, 4 * base.size, "above", rng)
    below = hard.outside(base, 4 * base.size, "below", rng)
    for new in (above, below):
        for i, batch in enumerate(np.array_split(new, 40)):
            values = rng.integers(0, 2**62, batch.size)
            index.put_many(batch, values)
            ref.update(zip(batch.tolist(), values.tolist()))
            gone = batch[: batch.size // 50]  # a few deletes and one-at-a-time puts among them
            assert index.delete_many(gone).all()
            for k in gone.tolist():
                del ref[k]
            for k in gone[::2].tolist():
                index[k] = ref[k] = k
            if i % 10 == 9:
                index._check()
    s = check_stats(index)
    assert s["max_dense_node"] < 8
    deep = sum(count for depth, count in s["depth_histogram"].items() if depth >= 3)
    assert s["avg_depth"] <= 1.75 and s["max_depth"] <= 5 and deep <= len(index) // 10
    assert s["memory_bytes"] <= 60 * len(index)
    keys = np.fromiter(ref.keys(), dtype=np.uint64, count=len(ref))
    assert np.array_equal(np.fromiter(index.keys(), dtype=np.uint64, count=len(index)), keys)
    got, found = index.get_many(keys)
    assert found.all() and got.tolist() == list(ref.values())


@pytest.mark.parametrize("dtype", ["uint64", "int64", "float64"])
def test_descending_and_ascending_inserts_one_at_a_time(dtype):
    keys = np.arange(1, 30_001, dtype=np.int64) * 7919
    index = nfl.Index(key_dtype=dtype)
    for k in hard.descending(keys.astype(dtype)).tolist():
        index[k] = 1
    above = keys.astype(dtype) + keys.astype(dtype).max()
    for k in above.tolist():
        index[k] = 2
    s = check_stats(index)
    assert s["max_dense_node"] < 8
    assert s["avg_depth"] <= 3.0 and s["max_depth"] <= 8
    check_contents(index, np.concatenate([keys.astype(dtype), above]))


def test_memory_usage_is_counted_alike_on_allocation_and_release():
    """memory_usage (malloc's real chunk sizes) grows with the keys and returns to about an empty tree's."""
    keys = np.unique(hard.dense_runs(np.random.default_rng(5), 50_000))
    index = nfl.Index()
    empty = index.memory_usage()
    for k in keys[::-1].tolist():
        index[k] = 0
    assert index.memory_usage() >= 16 * keys.size + empty
    assert index.delete_many(keys).all()
    # a few small nodes may stay until the next rebuild; a mismatch between what an
    # allocation adds and its release takes would leave tens of KB per 50K frees
    assert empty <= index.memory_usage() < empty + 4096



def test_the_switch_sees_the_pieces_model():
    """nfl_slot_counts says when it counted a pieces model: the switch charges its piece read."""
    from nfl import conflicts
    runs = np.unique(hard.dense_runs(np.random.default_rng(7), 50_000))
    counts, pieces = conflicts.root_model(runs)
    assert pieces and counts.sum() == runs.size
    uniform = np.unique(np.random.default_rng(7).integers(0, 2**64, 50_000, dtype=np.uint64))
    assert not conflicts.root_model(uniform)[1]


def test_durable_checkpoint_rebuilds_the_tree_and_keeps_a_flow(tmp_path):
    """nfl.open(..., flow=): a tree grown by descending inserts is rebuilt at the checkpoint, with the flow."""
    rng = np.random.default_rng(6)
    keys = np.unique(rng.integers(0, 10**9, 30_000, dtype=np.uint64))
    flow = flat_flow(1e9)
    with nfl.open(tmp_path / "d", sync="none", flow=flow) as db:
        for k in hard.descending(keys).tolist():
            db[k] = 1
        assert db.flow is None
        db.checkpoint()
        assert db.flow is not None and np.array_equal(db.flow.params(), flow.params())
        assert check_stats(db._live())["avg_depth"] <= 2.0  # the live Index: _check is not on the durable API
        db.put_many(keys[:10], np.zeros(10, dtype=np.int64))
    with nfl.open(tmp_path / "d") as db:  # the flow came back with the snapshot
        assert db.flow is not None
        values = check_contents(db, keys)
        assert (values[:10] == 0).all() and (values[10:] == 1).all()


def test_durable_checkpoint_with_object_values_keeps_every_object(tmp_path):
    keys = np.arange(0, 3000, 3, dtype=np.uint64)
    with nfl.open(tmp_path / "d", value_dtype="object", sync="none", flow="off") as db:
        for k in hard.descending(keys).tolist():
            db[k] = ("v", k)
        db.checkpoint()
        assert db.flow is None and len(db) == keys.size
        assert all(db[k] == ("v", k) for k in keys.tolist())
    with nfl.open(tmp_path / "d") as db:
        assert db.get_many(keys)[0].tolist() == [("v", k) for k in keys.tolist()]


def test_durable_auto_flow_on_few_keys_trains_none(tmp_path):
    with nfl.open(tmp_path / "d", flow="auto", sync="none") as db:
        db.put_many(np.arange(1000, dtype=np.uint64), np.arange(1000))
        db.checkpoint()
        assert db.flow is None and len(db) == 1000
        assert db.stats()["flow_reason"]


@pytest.mark.parametrize("flow, error", [(3, TypeError), ("bogus", ValueError)])
def test_durable_flow_argument_is_checked(tmp_path, flow, error):
    with pytest.raises(error):
        nfl.open(tmp_path / "d", flow=flow)
    assert not (tmp_path / "d").exists()  # refused before anything is made
