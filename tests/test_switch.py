"""The auto switch: the paper's tail-conflict rule plus the lookup-cost rule."""
import numpy as np
import pytest

import nfl
from nfl import switch


@pytest.fixture(scope="module")
def lognormal():
    rng = np.random.default_rng(3)
    keys = np.unique((rng.lognormal(0.0, 2.0, 60_000) * 1e9).astype(np.uint64))[:50_000]
    return keys, nfl.Flow.train(keys, progress=False, seed=1)


class Sized:
    def __init__(self, table_bytes):
        self.table_bytes = table_bytes


def test_levels_below_root_counts_keys_in_overfull_slots():
    assert switch.levels_below_root(np.arange(1000.0), 1) == 0.0
    clumped = np.concatenate([np.arange(500.0), np.full(500, 250.5)])
    assert switch.levels_below_root(clumped, 6) == pytest.approx(0.5, abs=0.01)
    assert switch.levels_below_root(clumped, 1000) == 0.0


def test_bucket_lines_count_the_lines_of_the_keys_buckets():
    assert switch.bucket_lines(np.arange(1000.0), 6) == 0.0  # one key a slot: no buckets
    pairs = np.repeat(np.arange(500.0), 2)  # every key shares its slot with one other
    assert switch.bucket_lines(pairs, 6) == pytest.approx(40 / 64)
    assert switch.bucket_lines(pairs, 1) == 0.0  # over-full: in a child, not a bucket
    assert switch.lookup_levels(pairs, 1) == pytest.approx(1.0)


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
    monkeypatch.setattr(switch, "_flow_for", lambda k, f: flow)
    monkeypatch.setattr(switch, "table_levels", lambda f: cost)
    raw_levels = switch.lookup_levels(keys.astype(np.float64), 6)
    assert switch.TRANSFORM_LEVELS < raw_levels < 1.0 + switch.TRANSFORM_LEVELS  # the table decides
    choice = switch.choose_flow(keys, "auto")
    assert (choice.flow is flow) is kept
    assert choice.tail_conflicts_flow < 0.9 * choice.tail_conflicts_raw  # the paper's rule alone would keep it
    idx = nfl.Index.bulk_load(keys, flow="auto")
    assert idx.stats()["tail_conflicts_flow"] == choice.tail_conflicts_flow
    assert idx.stats()["flow_enabled"] is kept


def test_forced_flow_ignores_the_cost(monkeypatch, lognormal):
    keys, flow = lognormal
    monkeypatch.setattr(switch, "table_levels", lambda f: 1.0)
    assert switch.choose_flow(keys, flow).flow is flow
