"""The auto switch: the paper's tail-conflict rule plus the lookup-cost rule."""
import numpy as np
import pytest

import nfl
from nfl import conflicts, switch
from workloads import datasets


@pytest.fixture(scope="module")
def lognormal():
    keys = datasets.generate("lognormal", 50_000, 3)
    return keys, nfl.Flow.train(keys, progress=False, seed=1)


class Sized:
    def __init__(self, table_bytes):
        self.table_bytes = table_bytes


def _levels(keys, bucket, measure=conflicts.over_full_share):
    return measure(conflicts.model_counts(keys), bucket)


def test_over_full_share_counts_keys_in_overfull_slots():
    assert _levels(np.arange(1000.0), 1) == 0.0
    clumped = np.concatenate([np.arange(500.0), np.full(500, 250.5)])
    assert _levels(clumped, 6) == pytest.approx(0.5, abs=0.01)
    assert _levels(clumped, 1000) == 0.0


def test_bucket_lines_count_the_lines_of_the_keys_buckets():
    assert _levels(np.arange(1000.0), 6, conflicts.bucket_lines) == 0.0  # one key a slot: no buckets
    pairs = np.repeat(np.arange(500.0), 2)  # every key shares its slot with one other
    assert _levels(pairs, 6, conflicts.bucket_lines) == pytest.approx(40 / 64)
    assert _levels(pairs, 1, conflicts.bucket_lines) == 0.0  # over-full: in a child, not a bucket
    assert _levels(pairs, 1, conflicts.lookup_levels) == pytest.approx(1.0)


def test_table_cost_grows_with_size_up_to_one_level():
    assert switch.table_levels(Sized(0)) == 0.0
    assert switch.table_levels(Sized(switch.TABLE_LEVEL_BYTES // 4)) == pytest.approx(0.25)
    assert switch.table_levels(Sized(10 * switch.TABLE_LEVEL_BYTES)) == 1.0


def test_real_flow_reports_its_table_bytes(lognormal):
    _, flow = lognormal
    assert flow.table_bytes >= 16 * flow.bins  # at least a knot and a (Y, slope) pair per bin


@pytest.mark.parametrize("cost, kept", [(0.0, True), (1.0, False)])
def test_auto_weighs_the_flow_tables(monkeypatch, lognormal, cost, kept):
    keys, flow = lognormal
    monkeypatch.setattr(switch, "_flow_for", lambda k, f: (flow, None))
    monkeypatch.setattr(switch, "table_levels", lambda f: cost)
    raw_slots, raw_pieces = conflicts.root_model(keys)  # raw lognormal: the pieces model, a piece read more
    bucket = conflicts.bucket_for(conflicts.stats_of(conflicts.occupied(raw_slots)))
    raw_levels = conflicts.lookup_levels(conflicts.occupied(raw_slots), bucket) + conflicts.PIECE_LEVELS * raw_pieces
    flow_counts = conflicts.model_counts(keys, flow)
    flow_levels = conflicts.lookup_levels(flow_counts, conflicts.bucket_for(conflicts.stats_of(flow_counts)))
    flow_levels += switch.TRANSFORM_LEVELS
    assert flow_levels < raw_levels < flow_levels + 1.0  # the table decides
    choice = switch.choose_flow(keys, "auto")
    assert (choice.flow is flow) is kept
    # the paper's rule alone would keep it, or cannot judge a pieces root (low tails, a piece read more)
    assert raw_pieces or choice.tail_conflicts_flow < 0.9 * choice.tail_conflicts_raw
    idx = nfl.Index.bulk_load(keys, flow="auto")
    assert idx.stats()["tail_conflicts_flow"] == choice.tail_conflicts_flow
    assert idx.stats()["flow_enabled"] is kept
    assert idx.stats()["flow_reason"].startswith("auto: on" if kept else "auto: off")


def test_forced_flow_ignores_the_cost(monkeypatch, lognormal):
    keys, flow = lognormal
    monkeypatch.setattr(switch, "table_levels", lambda f: 1.0)
    assert switch.choose_flow(keys, flow).flow is flow


@pytest.mark.parametrize("bad", ["autoo", "ON", "/no/such/flow.nflf"])
def test_unknown_flow_string_names_the_accepted_values(bad):
    with pytest.raises(ValueError, match='"auto", "on", "off", an nfl.Flow'):
        nfl.Index.bulk_load(np.arange(10, dtype=np.uint64), flow=bad)


def test_flow_of_another_type_is_a_type_error():
    with pytest.raises(TypeError, match="flow must be"):
        nfl.Index.bulk_load(np.arange(10, dtype=np.uint64), flow=3)


def test_auto_without_torch_warns_once(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("no torch here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    monkeypatch.setattr(switch, "_warned", set())
    keys = np.arange(switch.AUTO_MIN_KEYS, dtype=np.uint64) * 3
    with pytest.warns(RuntimeWarning, match="PyTorch is not installed"):
        idx = nfl.Index.bulk_load(keys, flow="auto")
    assert "PyTorch is not installed" in idx.stats()["flow_reason"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nfl.Index.bulk_load(keys, flow="auto")  # the second time: no warning


@pytest.mark.parametrize("flow, reason", [("off", 'flow="off"'), ("auto", "fewer than")])
def test_flow_reason_says_why(flow, reason):
    idx = nfl.Index.bulk_load(np.arange(100, dtype=np.uint64), flow=flow)
    assert reason in idx.stats()["flow_reason"]
    assert "no flow" in nfl.Index().stats()["flow_reason"]


def test_flow_reason_of_a_given_flow(lognormal, tmp_path):
    keys, flow = lognormal
    assert "given" in nfl.Index.bulk_load(keys, flow=flow).stats()["flow_reason"]
    flow.save(tmp_path / "f.nflf")
    assert "loaded from" in nfl.Index.bulk_load(keys, flow=tmp_path / "f.nflf").stats()["flow_reason"]


def test_tuning_knobs_are_keyword_arguments():
    keys = datasets.generate("lognormal", 20_000, 4)
    for bucket in (1, conflicts.MAX_BUCKET):
        idx = nfl.Index.bulk_load(keys, flow="off", bucket_size=bucket, prefetch=False)
        idx._check()
        assert idx.stats()["bucket_size"] == bucket
        values, found = idx.get_many(keys)
        assert found.all() and np.array_equal(values, np.arange(keys.size))
    assert nfl.Index.bulk_load(keys, flow="off").stats()["bucket_size"] == \
        conflicts.bucket_for(conflicts.conflict_stats(keys))
    for bad in (0, conflicts.MAX_BUCKET + 1, 2.0):
        with pytest.raises(ValueError, match="bucket_size"):
            nfl.Index.bulk_load(keys, flow="off", bucket_size=bad)
    with pytest.raises(TypeError, match="prefetch"):
        nfl.Index.bulk_load(keys, flow="off", prefetch=0)


def test_a_flow_that_is_not_monotone_is_a_value_error():
    """Negative bin masses would make the spline decrease: refused with ValueError, never built on."""
    from nfl.flow import Flow, layout

    params = layout.pack(layout.Spline("linear", 1e-3, 0.0, np.array([0.0, 0.5, 1.0]), np.array([1.0, 3.0])))
    params[-1] = -1.0  # the second bin's mass
    with pytest.raises(ValueError, match="masses"):
        nfl.Index.bulk_load(np.arange(100, dtype=np.uint64), flow=Flow(params))
