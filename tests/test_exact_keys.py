"""Key arrays are taken exactly or refused: long double, float16/float32, masked, bytes-like.

The rules of nfl._keys.key_array: a query array of any integer or float dtype
is accepted when every key is exactly a key of the index's dtype; masked
arrays and bytes-like objects raise TypeError.
"""
import numpy as np
import pytest

import nfl
from nfl.storage import SnapshotError

LONG_DOUBLE_IS_WIDER = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant


@pytest.fixture(params=["index", "durable"])
def make(request, tmp_path):
    """A function making an empty index of a key dtype: a plain Index or a durable one."""
    opened = []

    def build(key_dtype):
        if request.param == "index":
            return nfl.Index(key_dtype)
        opened.append(nfl.open(tmp_path / f"db{len(opened)}", key_dtype=key_dtype))
        return opened[-1]

    yield build
    for db in opened:
        db.close()


@pytest.mark.skipif(not LONG_DOUBLE_IS_WIDER, reason="long double is float64 here")
def test_long_double_keys_into_a_float64_index(make):
    idx = make("float64")
    idx.put_many(np.array([2.0**53, 0.5]), [1, 2])
    off_by_one = np.array([2**53], dtype=np.longdouble) + 1  # rounds to 2**53 as a float64
    for call in (idx.get_many, idx.contains_many, idx.delete_many, lambda k: idx.put_many(k, [9])):
        with pytest.raises(ValueError, match="not exactly representable as float64"):
            call(off_by_one)
    exact = np.array([2**53, 0.5, 3], dtype=np.longdouble)
    assert idx.contains_many(exact).tolist() == [True, True, False]
    assert len(idx) == 2 and idx[2.0**53] == 1


@pytest.mark.skipif(not LONG_DOUBLE_IS_WIDER, reason="long double is float64 here")
def test_long_double_keys_into_integer_indexes(make):
    u, i = make("uint64"), make("int64")
    u.put_many(np.array([2**64 - 1, 2**63 + 1], dtype=np.uint64), [1, 2])
    i.put_many(np.array([-(2**63), 2**53 + 1]), [1, 2])
    assert u.get_many(np.array([2**64 - 1, 2**63 + 1, 3], dtype=np.longdouble))[1].tolist() == [True, True, False]
    assert i.contains_many(np.array([-(2**63), 2**53 + 1], dtype=np.longdouble)).tolist() == [True, True]
    for idx, bad in ((u, 2**64), (u, -1), (u, 0.5), (i, 2**63), (i, 2.5)):
        with pytest.raises(ValueError, match="not an integer in the range"):
            idx.get_many(np.array([bad], dtype=np.longdouble))


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_narrow_floats_are_exact_keys(make, dtype):
    f, u = make("float64"), make("uint64")
    narrow = np.array([0.1, 1.5, -2.0, 65504], dtype=dtype)  # 0.1 rounded to the narrow type
    f.put_many(narrow, [1, 2, 3, 4])
    assert f.range(-10, 10)[0].tolist() == sorted(float(x) for x in narrow[:3])  # each exactly as held
    assert f.get_many(narrow)[1].all() and not f.contains_many(np.array([0.1]))[0]  # float64's 0.1 differs
    u.put_many(np.array([3, 2048], dtype=np.uint64), [1, 2])
    assert u.contains_many(np.array([3, 2048], dtype=dtype)).tolist() == [True, True]
    with pytest.raises(ValueError, match="not an integer"):
        u.get_many(np.array([1.5], dtype=dtype))


@pytest.mark.parametrize("key_dtype", ["uint64", "int64", "float64"])
def test_masked_arrays_are_refused(make, key_dtype):
    idx = make(key_dtype)
    keys = np.ma.array([1, 2, 3], mask=[False, True, False]).astype(key_dtype)
    for call in (idx.get_many, idx.contains_many, idx.delete_many, lambda k: idx.put_many(k, [1, 2, 3]),
                 lambda k: idx.put_many([1, 2, 3], np.ma.array([1, 2, 3], mask=[0, 1, 0]))):
        with pytest.raises(TypeError, match="masked array"):
            call(keys)
    with pytest.raises(TypeError, match="masked array"):
        nfl.Index.bulk_load(keys)
    assert len(idx) == 0


@pytest.mark.parametrize("buffer", [b"\x01\x02", bytearray(b"\x01\x02"), memoryview(b"\x01\x02"),
                                    memoryview(np.arange(3, dtype=np.uint64))])
def test_bytes_like_objects_are_refused(make, buffer):
    idx = make("uint64")
    idx[1] = 1
    for call in (idx.get_many, idx.contains_many, idx.delete_many, lambda k: idx.put_many(k, [1, 2])):
        with pytest.raises(TypeError, match="not (bytes|bytearray|memoryview)"):
            call(buffer)
    with pytest.raises(TypeError, match="np.frombuffer"):
        nfl.Index.bulk_load(buffer)
    assert idx.contains_many(np.frombuffer(b"\x01" + bytes(7), dtype="<u8")).tolist() == [True]


def test_key_dtype_none_is_a_type_error(tmp_path):
    for make in (lambda: nfl.Index(key_dtype=None), lambda: nfl.Index("uint64", value_dtype=None)):
        with pytest.raises(TypeError, match="dtype must be one of"):
            make()
    with nfl.open(tmp_path / "db", key_dtype="int64") as db:  # None means "as stored" for a durable index
        pass
    with nfl.open(tmp_path / "db", key_dtype=None) as db:
        assert db.key_dtype == "int64"


def test_load_of_a_directory_is_a_snapshot_error(tmp_path):
    nfl.open(tmp_path / "db").close()
    with pytest.raises(SnapshotError, match="is a directory"):
        nfl.Index.load(tmp_path / "db")
