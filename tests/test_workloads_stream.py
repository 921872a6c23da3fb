"""Op streams: proportions, exact expected values, YCSB key semantics, the paper's mix, byte-identical files."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.properties import core_settings, parse_properties
from workloads.stream import (DELETE, INSERT, OP_NAMES, PROPORTION_KEYS, READ, RMW, SCAN, UPDATE, YCSB_DIR,
                              OpStream, build, paper_stream, ycsb_stream)

KEYS = np.sort(np.random.default_rng(0).choice(2**48, 60_000, replace=False)).astype(np.uint64)


def replay(s: OpStream):
    """Check every expected value against a dict that follows the stream's semantics."""
    store = dict(zip(s.load_keys.tolist(), s.load_values.tolist()))
    assert len(store) == len(s.load_keys)
    for o, k, v, n, e in zip(s.op.tolist(), s.key.tolist(), s.value.tolist(), s.scan_len.tolist(),
                             s.expected.tolist()):
        assert (n > 0) == (o == SCAN)
        if o in (READ, RMW):
            assert e == store.get(k, -1)
        else:
            assert e == -1
        if o == INSERT:
            assert k not in store
        if o in (INSERT, UPDATE, RMW):
            assert v >= 0
            store[k] = v
        elif o == DELETE:
            store.pop(k, None)
    return store


def ycsb(props, keys=KEYS, seed=1, **kw):
    return ycsb_stream({"recordcount": 5_000, "operationcount": 20_000, **props}, keys, seed, **kw)


@pytest.mark.parametrize("letter", "abcdef")
def test_core_workload_proportions_match_the_file(letter):
    s = build(str(YCSB_DIR / f"workload{letter}"), KEYS, 11, {"recordcount": 5_000}, n_ops=20_000)
    cfg = core_settings(parse_properties(YCSB_DIR / f"workload{letter}"))
    n = len(s)
    assert n == 20_000
    for code, key in enumerate(PROPORTION_KEYS):
        p = cfg[key]
        count = int(np.count_nonzero(s.op == code))
        assert abs(count - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1e-9, (OP_NAMES[code], count, p)
    replay(s)


def test_proportions_are_normalised_like_ycsb():
    s = ycsb({"readproportion": 1, "updateproportion": 3, "insertproportion": 0})
    assert np.mean(s.op == UPDATE) == pytest.approx(0.75, abs=0.02)


@settings(max_examples=25, deadline=None)
@given(
    shares=st.lists(st.integers(0, 4), min_size=6, max_size=6).filter(any),
    dist=st.sampled_from(["uniform", "zipfian", "latest", "hotspot", "sequential", "exponential"]),
    order=st.sampled_from(["hashed", "ordered"]),
    scans=st.sampled_from(["uniform", "zipfian"]),
    n_keys=st.integers(2, 400),
    seed=st.integers(0, 2**32),
)
def test_expected_values_are_exact_in_stream_order(shares, dist, order, scans, n_keys, seed):
    props = dict(zip(PROPORTION_KEYS, shares))
    props.update(requestdistribution=dist, insertorder=order, scanlengthdistribution=scans,
                 maxscanlength=7, recordcount=n_keys // 2, operationcount=300)
    keys = KEYS[:n_keys]
    try:
        s = ycsb_stream(props, keys, seed)
    except ValueError as e:
        assert "the dataset has only" in str(e)
        return
    replay(s)
    assert set(s.load_keys.tolist()) <= set(keys.tolist())
    assert np.all(np.diff(s.load_keys.astype(float)) > 0)
    assert np.all((s.scan_len[s.op == SCAN] >= 1) & (s.scan_len[s.op == SCAN] <= 7))


def test_same_seed_gives_byte_identical_files(tmp_path):
    overrides = {"recordcount": 1_000, "readproportion": 0.4, "insertproportion": 0.1}
    streams = [build("workloada", KEYS, seed, overrides, n_ops=3_000) for seed in (5, 5, 6)]
    paths = [tmp_path / f"s{i}.npz" for i in range(3)]
    for s, path in zip(streams, paths):
        s.save(path)
    first, again, other = (p.read_bytes() for p in paths)
    assert first == again
    assert first != other
    back = OpStream.load(paths[0])
    for name in ["load_keys", "load_values", "op", "key", "value", "scan_len", "expected"]:
        assert np.array_equal(getattr(back, name), getattr(streams[0], name)), name
    assert back.meta == streams[0].meta
    assert back.meta["seed"] == 5 and back.meta["workload"] == "workloada"
    assert back.meta["properties"]["operationcount"] == "3000"


def test_loading_a_file_that_is_not_a_stream(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, op=np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="not an op stream, missing load_keys"):
        OpStream.load(path)


def test_latest_favours_recent_inserts():
    n_load = 2_000
    s = ycsb({"requestdistribution": "latest", "insertorder": "ordered", "readproportion": 0.8,
              "updateproportion": 0, "insertproportion": 0.2, "recordcount": n_load})
    replay(s)
    # with insertorder=ordered, record r is the r-th smallest key of loaded + inserted
    record = {k: r for r, k in enumerate(s.load_keys.tolist())}
    for j, k in enumerate(s.key[s.op == INSERT].tolist()):
        record[k] = n_load + j
    newest = n_load - 1 + np.cumsum(s.op == INSERT)
    reads = s.op == READ
    age = newest[reads] - np.array([record[k] for k in s.key[reads].tolist()])
    assert age.min() >= 0  # never a record that is not inserted yet
    assert np.median(age) < 100  # zipfian ~45; uniform over ~4,000 records would give ~1,500
    assert np.mean(age < 10) > 0.25
    fresh = np.isin(s.key[reads], s.key[s.op == INSERT])
    assert fresh.mean() > 0.5  # most reads hit keys inserted during the run


def test_zipfian_requests_spread_over_the_key_space():
    s = ycsb({"readproportion": 1, "updateproportion": 0, "insertorder": "ordered",
              "requestdistribution": "zipfian", "recordcount": 10_000, "operationcount": 50_000})
    rank = np.searchsorted(s.load_keys, s.key)
    counts = np.bincount(rank, minlength=len(s.load_keys))
    hottest = np.argsort(counts)[::-1][:40]
    assert np.bincount(hottest * 4 // len(s.load_keys), minlength=4).min() >= 4
    assert counts[hottest[0]] > 0.02 * len(s)


def test_ordered_inserts_append_and_hashed_inserts_interleave():
    props = {"readproportion": 0.5, "updateproportion": 0, "insertproportion": 0.5}
    ordered = ycsb({**props, "insertorder": "ordered"})
    inserted = ordered.key[ordered.op == INSERT]
    assert inserted.min() > ordered.load_keys.max() and np.all(np.diff(inserted.astype(float)) > 0)
    hashed = ycsb({**props, "insertorder": "hashed"})
    inserted = hashed.key[hashed.op == INSERT]
    assert np.mean(inserted < hashed.load_keys.max()) > 0.9


def test_uniform_and_hotspot_only_touch_loaded_records():
    for dist in ("uniform", "hotspot", "sequential"):
        s = ycsb({"requestdistribution": dist, "readproportion": 0.5, "insertproportion": 0.5,
                  "updateproportion": 0})
        assert np.all(s.expected[s.op == READ] >= 0)
        assert np.isin(s.key[s.op == READ], s.load_keys).all(), dist


def test_recordcount_larger_than_the_dataset_is_capped_and_noted():
    s = ycsb({"recordcount": 10**9, "readproportion": 0.5, "insertproportion": 0.5, "updateproportion": 0},
             keys=KEYS[:3_000], operationcount=2_000)
    n_ins = int(np.count_nonzero(s.op == INSERT))
    assert len(s.load_keys) == 3_000 - n_ins == s.meta["recordcount"]
    assert "does not fit" in s.meta["notes"][0]
    assert s.meta["recordcount_requested"] == 10**9
    replay(s)
    # recordcount 0 means: all keys that fit
    assert len(ycsb({"recordcount": 0}, keys=KEYS[:3_000]).load_keys) == 3_000


def test_too_many_inserts_for_the_dataset():
    with pytest.raises(ValueError, match="inserts .* but the dataset has only 100"):
        ycsb({"readproportion": 0, "updateproportion": 0, "insertproportion": 1}, keys=KEYS[:100])


@pytest.mark.parametrize("read_percent", [100, 80, 20, 0])
def test_paper_workloads(read_percent):
    keys = KEYS[:20_001]
    s = build(f"paper-R{read_percent}", keys, 3, n_ops=8_000)
    assert len(s.load_keys) == 10_001
    assert np.count_nonzero(s.op == READ) == round(8_000 * read_percent / 100)
    assert np.count_nonzero(s.op == INSERT) == 8_000 - round(8_000 * read_percent / 100)
    assert set(np.unique(s.op).tolist()) <= {READ, INSERT}
    store = replay(s)
    assert set(store) <= set(keys.tolist())
    assert np.isin(s.key[s.op == READ], s.load_keys).all()  # lookups over loaded keys only
    assert not np.isin(s.key[s.op == INSERT], s.load_keys).any()  # inserts take held-out keys
    assert s.meta["workload"] == f"paper-R{read_percent}"


def test_paper_load_is_a_random_half_and_lookups_are_skewed():
    s = paper_stream(KEYS, 1.0, 50_000, seed=9)
    rank = np.searchsorted(KEYS, s.load_keys)
    assert np.mean(rank < len(KEYS) // 2) == pytest.approx(0.5, abs=0.02)
    counts = np.bincount(np.searchsorted(s.load_keys, s.key), minlength=len(s.load_keys))
    top = np.sort(counts)[::-1]
    # zipfian over 10^10 items folded onto the keys: the head keeps its mass (1/zeta(10^10) = 3.8 %
    # for the hottest, 20 % for the hottest hundred), the tail spreads evenly
    assert top[0] > 0.03 * len(s) and top[:100].sum() > 0.15 * len(s)


def test_paper_default_ops_and_limits():
    keys = KEYS[:1_000]
    assert len(build("paper-R0", keys, 1)) == 500
    with pytest.raises(ValueError, match="at most 2,500 ops"):
        build("paper-R80", keys, 1, n_ops=3_000)
    with pytest.raises(ValueError, match="apply to YCSB workload files only"):
        build("paper-R80", keys, 1, {"recordcount": 10})
    with pytest.raises(ValueError, match="unknown workload 'paper-X'.*workloada"):
        build("paper-X", keys, 1)


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_other_key_types(dtype):
    keys = np.linspace(-1e6, 1e6, 4_001).astype(dtype)
    keys = np.unique(keys)
    s = build("workloadd", keys, 2, {"recordcount": 1_000}, n_ops=2_000)
    assert s.load_keys.dtype == s.key.dtype == np.dtype(dtype)
    replay(s)


def test_meta_is_plain_json(tmp_path):
    s = build("paper-R20", KEYS[:1_000], np.int64(4), n_ops=100, dataset=Path("data/k_uint64"))
    s.save(tmp_path / "s.npz")
    assert OpStream.load(tmp_path / "s.npz").meta == s.meta
    assert s.meta["dataset"] == "data/k_uint64" and s.meta["seed"] == 4


def test_duplicate_keys_are_dropped_and_counted():
    keys = np.repeat(KEYS[:2_000], 2)
    s = build("paper-R80", keys, 1, n_ops=100)
    assert s.meta["duplicates_removed"] == 2_000 and s.meta["dataset_keys"] == 2_000


def test_operationcount_is_required():
    with pytest.raises(ValueError, match="operationcount is not set"):
        ycsb_stream({"readproportion": 1}, KEYS, 0)
