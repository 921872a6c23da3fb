"""What ordered reads hand back: fresh arrays of the index's dtypes, Python keys.

The stateful model (index_model.py) checks the entries; these pin the form of
the results, which the fast paths in Index.scan / lower_bound / min_key must
keep: every call returns arrays of its own (no later call may change them),
and the one-entry reads use per-thread cells that threads never share.
"""
import threading

import numpy as np
import pytest

import nfl

KEYS = {
    "uint64": np.array([3, 2**63 + 5, 2**64 - 1, 10], dtype=np.uint64),
    "int64": np.array([-(2**63), -7, 0, 2**63 - 1], dtype=np.int64),
    "float64": np.array([-1.5, -0.0, 2.5, 1e300], dtype=np.float64),
}
VALUES = {"int64": np.array([-1, 2**63 - 1, 0, 7], dtype=np.int64),
          "uint64": np.array([2**64 - 1, 1, 2**63, 0], dtype=np.uint64)}


@pytest.fixture(params=[(k, v) for k in KEYS for v in VALUES], ids=lambda p: f"{p[0]}-{p[1]}")
def index(request):
    key_dtype, value_dtype = request.param
    return nfl.Index.bulk_load(KEYS[key_dtype], VALUES[value_dtype], flow="off")


def sorted_entries(idx):
    """(keys ascending, the order that sorts them) of the index's fixture arrays."""
    order = np.argsort(KEYS[idx.key_dtype])
    return KEYS[idx.key_dtype][order], order


def test_scan_and_range_arrays_have_the_index_dtypes(index):
    lowest = index.min_key()
    for ks, vs in (index.scan(lowest, 3), index.scan(lowest, 10), index.range(lowest, index.max_key()),
                   index.scan(lowest, 0)):
        assert ks.dtype == np.dtype(index.key_dtype) and vs.dtype == np.dtype(index.value_dtype)
        assert ks.ndim == vs.ndim == 1 and ks.size == vs.size


def test_scan_entries_match_the_keys_in_order(index):
    keys, order = sorted_entries(index)
    values = VALUES[index.value_dtype][order]
    for count in (1, 2, 4, 5, 5000):
        ks, vs = index.scan(index.min_key(), count)
        assert ks.tolist() == keys[:count].tolist() and vs.tolist() == values[:count].tolist()


def test_results_are_fresh_arrays_later_calls_leave_alone(index):
    lowest = index.min_key()
    first_k, first_v = index.scan(lowest, 2)
    kept_k, kept_v = first_k.copy(), first_v.copy()
    second_k, second_v = index.scan(index.max_key(), 2)
    index.scan(lowest, 4), index.range(lowest, index.max_key())
    index[lowest] = 1  # a write after the read changes the index, not the result
    assert (first_k == kept_k).all() and (first_v == kept_v).all()
    arrays = (first_k, first_v, second_k, second_v)
    for i, a in enumerate(arrays):
        assert a.flags.writeable
        for b in arrays[i + 1:]:
            assert not np.shares_memory(a, b)


def test_one_entry_reads_return_python_keys(index):
    keys, _ = sorted_entries(index)
    expect_type = float if index.key_dtype == "float64" else int
    assert type(index.min_key()) is expect_type and index.min_key() == keys[0]
    assert type(index.max_key()) is expect_type and index.max_key() == keys[-1]
    got = index.lower_bound(keys[1])
    assert type(got) is expect_type and got == keys[1]
    assert index.lower_bound(keys[-1]) == keys[-1]


def test_lower_bound_between_and_past_keys():
    idx = nfl.Index.bulk_load(np.array([10, 20, 30], dtype=np.uint64), flow="off")
    assert [idx.lower_bound(k) for k in (-1, 0, 10, 11, 20.5, 30, 31, 2**64)] == [10, 10, 10, 20, 30, 30, None, None]
    assert nfl.Index().lower_bound(5) is None and nfl.Index().min_key() is None


def test_float_lower_bound_of_minus_zero_is_zero():
    idx = nfl.Index.bulk_load(np.array([-0.0, 1.0]), flow="off")
    assert idx.lower_bound(-1e-300) == 0.0 and idx.min_key() == 0.0


def test_threads_reading_never_see_each_others_answer():
    """Reads release the GIL between the native call and reading its buffer: no two threads may share one."""
    keys = np.arange(0, 200_000, 2, dtype=np.uint64)
    idx = nfl.Index.bulk_load(keys, flow="off")
    errors = []

    def reader(seed):
        rng = np.random.default_rng(seed)
        for q in rng.integers(0, 199_000, 10_000).tolist():
            first = q + (q & 1)
            if idx.lower_bound(q) != first:
                errors.append(("lower_bound", q))
            ks, vs = idx.scan(q, 1 + q % 60)
            if ks.tolist() != list(range(first, first + 2 * ks.size, 2)) or ks.size != 1 + q % 60 \
                    or vs.tolist() != list(range(first // 2, first // 2 + vs.size)):
                errors.append(("scan", q))
            if idx.min_key() != 0 or idx.max_key() != 199_998:
                errors.append("extremes")

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_scan_counts_of_every_size_in_turn():
    """Scans reuse pooled buffers of whatever room the last one needed: each answer must fit its own count."""
    keys = np.arange(0, 30_000, 3, dtype=np.uint64)
    idx = nfl.Index.bulk_load(keys, flow="off")
    for count in (100, 5, 4096, 4097, 1, 100, 9_999, 10_001, 3, 100):
        start = int(keys[-count // 2]) if count < keys.size else 0
        i = int(np.searchsorted(keys, start))
        ks, vs = idx.scan(start, count)
        assert ks.tolist() == keys[i:i + count].tolist() and vs.tolist() == list(range(i, min(i + count, keys.size)))


@pytest.mark.parametrize("count", [np.int64(3), np.uint8(3), 3.0, True])
def test_scan_count_of_other_integral_types(count):
    idx = nfl.Index.bulk_load(np.array([1, 2, 3, 4], dtype=np.uint64), flow="off")
    assert idx.scan(2, count)[0].tolist() == [2, 3, 4][:int(count)]


def test_scan_checks_start_and_count():
    idx = nfl.Index.bulk_load(np.array([1, 2, 3], dtype=np.uint64), flow="off")
    with pytest.raises(ValueError):
        idx.scan(1, -1)
    with pytest.raises(ValueError):
        idx.scan(1, 2.5)
    with pytest.raises(TypeError):
        idx.scan("1", 2)
    with pytest.raises(TypeError):
        idx.scan("1", 0)
    assert idx.scan(2**64, 5)[0].size == 0 and idx.scan(-(2**70), 2)[0].tolist() == [1, 2]
