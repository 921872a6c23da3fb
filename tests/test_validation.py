"""Bad input gets a clear Python exception, never a crash or a silent wrap."""
import math

import numpy as np
import pytest

import nfl


@pytest.fixture
def u64():
    return nfl.Index.bulk_load(np.array([1, 5, 9], dtype=np.uint64), flow="off")


@pytest.fixture
def i64():
    return nfl.Index.bulk_load(np.array([-5, 0, 5], dtype=np.int64), flow="off")


@pytest.fixture
def f64():
    return nfl.Index.bulk_load(np.array([-1.5, 0.0, 2.5], dtype=np.float64), flow="off")


# ---- bulk_load ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["uint64", "int64", "float64"])
def test_duplicate_keys_name_the_duplicate(dtype):
    keys = np.array([7, 3, 11, 3, 5], dtype=dtype)
    with pytest.raises(ValueError, match=r"duplicate key.*\b3"):
        nfl.Index.bulk_load(keys, flow="off")


def test_negative_zero_and_zero_are_one_key():
    with pytest.raises(ValueError, match="duplicate"):
        nfl.Index.bulk_load(np.array([0.0, -0.0]), flow="off")
    idx = nfl.Index.bulk_load(np.array([-0.0, 1.0]), flow="off")
    assert idx[0.0] == 0 and idx[-0.0] == 0 and idx.min_key() == 0.0


def test_nan_keys_rejected():
    with pytest.raises(ValueError, match="NaN"):
        nfl.Index.bulk_load(np.array([1.0, np.nan]), flow="off")


def test_length_mismatch_rejected():
    with pytest.raises(ValueError, match="length"):
        nfl.Index.bulk_load(np.array([1, 2], dtype=np.uint64), np.array([1]), flow="off")


@pytest.mark.parametrize("keys", [
    np.array(["a", "b"]), np.array([1, 2], dtype=object), np.array([1, 2], dtype=np.float32),
    np.array([True, False]), np.array([1, 2], dtype=np.int32), np.array([1 + 2j]),
])
def test_wrong_key_dtype_names_accepted_dtypes(keys):
    with pytest.raises(TypeError, match="uint64, int64 or float64"):
        nfl.Index.bulk_load(keys, flow="off")


def test_two_dimensional_keys_rejected():
    with pytest.raises(ValueError, match="1-D"):
        nfl.Index.bulk_load(np.zeros((2, 2), dtype=np.uint64), flow="off")


def test_wrong_value_dtype_rejected():
    with pytest.raises(TypeError, match="values"):
        nfl.Index.bulk_load(np.array([1, 2], dtype=np.uint64), np.array([1.0, 2.0]), flow="off")


def test_any_order_strides_and_byte_order():
    keys = np.array([9, 1, 5, 3, 7, 2], dtype=">u8")[::2]  # big-endian, strided: 9, 5, 7
    idx = nfl.Index.bulk_load(keys, flow="off")
    assert list(idx.items()) == [(5, 1), (7, 2), (9, 0)]


def test_empty_keys_give_working_index():
    idx = nfl.Index.bulk_load(np.array([], dtype=np.int64), flow="off")
    assert len(idx) == 0 and idx.min_key() is None and list(idx.items()) == []
    idx[-3] = 4
    assert idx[-3] == 4 and idx.range(-10, 10)[0].tolist() == [-3]


def test_bad_key_dtype_name():
    with pytest.raises(TypeError, match="key dtype"):
        nfl.Index(key_dtype="float32")
    with pytest.raises(TypeError, match="value dtype"):
        nfl.Index(value_dtype="float64")


def test_bad_flow_argument():
    with pytest.raises(TypeError, match="flow"):
        nfl.Index.bulk_load(np.array([1, 2], dtype=np.uint64), flow=3)


# ---- scalar keys ---------------------------------------------------------------

@pytest.mark.parametrize("key", [-1, 2**64, 1.5, math.inf, -0.5])
def test_uint64_out_of_range_keys(u64, key):
    with pytest.raises(ValueError):
        u64[key] = 1
    with pytest.raises(ValueError):
        u64.get(key)


@pytest.mark.parametrize("key", [2**63, -(2**63) - 1, 0.5, math.nan])
def test_int64_out_of_range_keys(i64, key):
    with pytest.raises(ValueError):
        i64.insert(key, 1)


@pytest.mark.parametrize("key", [math.nan, 2**53 + 1, 2**1024])
def test_float64_unrepresentable_keys(f64, key):
    with pytest.raises(ValueError):
        f64[key] = 1


@pytest.mark.parametrize("key", ["1", None, b"x", [1]])
def test_non_numeric_keys(u64, key):
    with pytest.raises(TypeError):
        u64[key] = 1
    assert key not in u64


def test_integral_floats_and_numpy_scalars_accepted(u64, f64):
    assert u64[5.0] == 1 and u64[np.uint64(9)] == 2 and u64[np.int32(1)] == 0
    assert f64[np.float64(2.5)] == 2 and f64[0] == 1


def test_missing_keys(u64):
    with pytest.raises(KeyError):
        u64[4]
    with pytest.raises(KeyError):
        del u64[4]
    assert u64.get(4) is None and u64.get(4, "d") == "d" and not u64.delete(4)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 1.5, "x"])
def test_bad_values(u64, value):
    with pytest.raises((ValueError, TypeError)):
        u64[3] = value
    assert 3 not in u64


def test_uint64_values_keep_full_range():
    idx = nfl.Index.bulk_load(np.array([1], dtype=np.uint64), np.array([2**64 - 1], dtype=np.uint64), flow="off")
    assert idx[1] == 2**64 - 1 and idx.value_dtype == "uint64"
    with pytest.raises(ValueError):
        idx[2] = -1


# ---- batches ---------------------------------------------------------------------

def test_batch_length_mismatch(u64):
    with pytest.raises(ValueError, match="length"):
        u64.put_many(np.array([1, 2], dtype=np.uint64), np.array([1], dtype=np.int64))


def test_batch_keys_out_of_range_are_refused_whole(u64):
    with pytest.raises(ValueError):
        u64.put_many(np.array([3, -1]), np.array([1, 2]))
    assert 3 not in u64
    with pytest.raises(ValueError):
        u64.get_many(np.array([1.5]))


def test_batch_float_keys_into_int_index(i64):
    values, found = i64.get_many(np.array([-5.0, 5.0, 7.0]))
    assert found.tolist() == [True, True, False] and values[:2].tolist() == [0, 2]
    with pytest.raises(ValueError):
        i64.get_many(np.array([2.0**63]))


def test_batch_int_keys_into_float_index(f64):
    assert f64.contains_many(np.array([0, 1], dtype=np.int64)).tolist() == [True, False]
    with pytest.raises(ValueError, match="representable"):
        f64.get_many(np.array([2**53 + 1], dtype=np.int64))
    with pytest.raises(ValueError, match="representable"):
        f64.get_many(np.array([2**64 - 1], dtype=np.uint64))
    with pytest.raises(ValueError, match="NaN"):
        f64.get_many(np.array([np.nan]))


@pytest.mark.parametrize("keys", [np.array(["a"]), np.array([True]), np.array([object()])])
def test_batch_wrong_dtype(u64, keys):
    with pytest.raises(TypeError):
        u64.get_many(keys)


def test_batch_lists_accepted(u64):
    values, found = u64.get_many([1, 2, 5])
    assert found.tolist() == [True, False, True] and values[found].tolist() == [0, 1]


def test_batch_values_out_of_range(u64):
    with pytest.raises(ValueError):
        u64.put_many(np.array([2], dtype=np.uint64), np.array([2**64 - 1], dtype=np.uint64))


# ---- ordered ---------------------------------------------------------------------

def test_bounds_outside_the_dtype(u64, i64, f64):
    assert u64.range(-10, 2**70)[0].tolist() == [1, 5, 9]
    assert u64.range(1.5, 9.5)[0].tolist() == [5, 9]
    assert i64.range(-math.inf, math.inf)[0].tolist() == [-5, 0, 5]
    assert f64.range(-2, 2**1100)[0].tolist() == [-1.5, 0.0, 2.5]
    assert u64.scan(-5, 2)[0].tolist() == [1, 5] and u64.lower_bound(2**64) is None
    with pytest.raises(ValueError):
        u64.scan(0, -1)
    with pytest.raises(ValueError):
        f64.range(math.nan, 1.0)


def test_stats_fields(u64):
    st = u64.stats()
    for field in ["size", "key_dtype", "flow_enabled", "model_nodes", "dense_nodes", "buckets", "max_depth",
                  "avg_depth", "tail_conflicts_raw", "tail_conflicts_flow", "bucket_size", "memory_bytes"]:
        assert field in st
    assert st["size"] == 3 and st["memory_bytes"] == u64.memory_usage() > 0 and st["flow_enabled"] is False
