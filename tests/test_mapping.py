"""The mapping protocol of nfl.Index: edge cases and bad input.

Behaviour against SortedDict over op sequences is checked by the stateful
machines (index_model.py); here are the cases a sequence rarely reaches: the
exact exceptions, the issue's reported surprises, chunked iteration, and the
durable index's logging of each mapping write.
"""
import collections.abc
import math
import pickle

import numpy as np
import pytest

import nfl
from nfl import index as index_module


@pytest.fixture
def idx():
    return nfl.Index.bulk_load(np.array([0, 1, 2], dtype=np.uint64), np.array([30, 20, 10]), flow="off")


def test_is_a_mutable_mapping_and_unhashable(idx):
    assert isinstance(idx, collections.abc.MutableMapping)
    with pytest.raises(TypeError):
        hash(idx)


def test_reversed_gives_keys_descending(idx):
    assert list(reversed(idx)) == [2, 1, 0]  # was values by position: [30, 20, 10]


def test_update_takes_a_mapping_and_replace_is_the_conditional_write(idx):
    idx.update({1: 2})
    assert idx[1] == 2
    assert idx.replace(1, 5) is True and idx[1] == 5
    assert idx.replace(7, 5) is False and 7 not in idx
    idx.update()
    idx.update([])
    assert len(idx) == 3


@pytest.mark.parametrize("bad, exc, match", [
    ([(1, 2, 3)], ValueError, "element #1 has length 3"),
    ([(1, 2), 5], TypeError, "element #2"),
    (5, TypeError, "not iterable"),
    ({-1: 2}, ValueError, "out of range"),
    ({1: 2**63}, ValueError, "out of range"),
    ({1.5: 2}, ValueError, "not an integer"),
    ({"a": 2}, TypeError, "int or float"),
])
def test_update_bad_input_changes_nothing(idx, bad, exc, match):
    before = dict(idx.items())
    with pytest.raises(exc, match=match):
        idx.update([(5, 1), *bad] if isinstance(bad, list) else bad)
    assert dict(idx.items()) == before


def test_update_from_an_index_of_another_dtype_is_checked():
    src = nfl.Index.bulk_load(np.array([-1, 3], dtype=np.int64), flow="off")
    dst = nfl.Index(key_dtype="uint64")
    with pytest.raises(ValueError):
        dst.update(src)
    assert len(dst) == 0
    dst.update(nfl.Index.bulk_load(np.array([3, 4], dtype=np.int64), flow="off"))
    assert dict(dst.items()) == {3: 0, 4: 1}


def test_pop_popitem_setdefault(idx):
    assert idx.pop(1) == 20 and 1 not in idx
    assert idx.pop(1, None) is None
    with pytest.raises(KeyError):
        idx.pop(1)
    for args in ((-1,), (-1, "d")):
        with pytest.raises(ValueError):
            idx.pop(*args)  # a key the dtype cannot hold raises, as in get
    assert idx.setdefault(0) == 30  # present: the default is not checked
    with pytest.raises(TypeError):
        idx.setdefault(9)  # absent: None is no int64 value
    assert 9 not in idx
    assert idx.setdefault(9, np.int64(4)) == 4 and type(idx[9]) is int
    assert idx.popitem() == (9, 4) and idx.popitem(last=False) == (0, 30)
    assert idx.popitem() == (2, 10)
    with pytest.raises(KeyError, match="empty"):
        idx.popitem()


def test_peekitem(idx):
    assert idx.peekitem() == (2, 10) and idx.peekitem(0) == (0, 30) and idx.peekitem(1) == (1, 20)
    assert idx.peekitem(-3) == (0, 30)
    for bad in (3, -4):
        with pytest.raises(IndexError):
            idx.peekitem(bad)
    with pytest.raises(IndexError):
        nfl.Index().peekitem(0)
    with pytest.raises(TypeError):
        idx.peekitem("0")


def test_clear_keeps_dtypes_and_flow_and_works_after():
    idx = nfl.Index.bulk_load(np.array([1.5, 2.5]), np.array([1, 2], dtype=np.uint64), flow="off")
    it = iter(idx)
    next(it)
    idx.clear()
    with pytest.raises(RuntimeError):
        next(it)
    assert len(idx) == 0 and idx.key_dtype == "float64" and idx.value_dtype == "uint64"
    idx[3.5] = 2**64 - 1
    assert dict(idx.items()) == {3.5: 2**64 - 1}


def test_copy_is_independent_and_keeps_flow_and_dtypes(idx):
    clone = idx.copy()
    assert clone == idx and type(clone) is nfl.Index and clone.stats()["bucket_size"] == idx.stats()["bucket_size"]
    clone[5] = 1
    del clone[0]
    assert dict(idx.items()) == {0: 30, 1: 20, 2: 10}
    assert pickle.loads(pickle.dumps(clone)) == clone


def test_eq_is_by_content():
    a = nfl.Index.bulk_load(np.array([1, 2], dtype=np.uint64), flow="off")
    b = nfl.Index.bulk_load(np.array([1, 2], dtype=np.int64), flow="off")
    assert a == b == {1: 0, 2: 1} and a is not b
    assert a != {1: 0} and a != {1: 0, 3: 1} and a != {1: 0, 2: 2}
    assert a != [(1, 0), (2, 1)]
    assert nfl.Index(key_dtype="float64") == {}
    c = nfl.Index(key_dtype="uint64", value_dtype="uint64")
    c.update({1: 0, 2: 1})
    assert a == c
    c[2] = 2**64 - 1
    d = nfl.Index(key_dtype="uint64")
    d.update({1: 0, 2: -1})
    assert c != d  # 2**64 - 1 and -1 share their bits, not their value


def test_views_are_live_sets(idx):
    keys, values, items = idx.keys(), idx.values(), idx.items()
    idx[7] = 1
    assert len(keys) == 4 and list(keys) == [0, 1, 2, 7] and list(values) == [30, 20, 10, 1]
    assert 7 in keys and -1 not in keys and "x" not in keys and 2.5 not in keys
    assert (7, 1) in items and (7, 2) not in items and (-1, 0) not in items and 5 not in items
    assert keys & {1, 9} == {1} and keys | {9} == {0, 1, 2, 7, 9} and keys - {0} == {1, 2, 7}
    assert keys.isdisjoint({5, 6}) and items & {(0, 30), (1, 0)} == {(0, 30)}
    assert list(reversed(items))[0] == (7, 1) and list(reversed(values)) == [1, 10, 20, 30]
    for view in (keys, values, items, reversed(items)):  # at the next item, as dict's views
        it = iter(view)
        next(it)
        idx[8] = 1
        with pytest.raises(RuntimeError):
            next(it)


def test_irange_reads_in_chunks_and_is_lazy(monkeypatch):
    idx = nfl.Index.bulk_load(np.arange(20_000, dtype=np.uint64), flow="off")
    reads = []
    real = nfl.Index._chunk

    def spy(self, lo, hi, flags, count, pick):
        reads.append(count)
        return real(self, lo, hi, flags, count, pick)

    monkeypatch.setattr(nfl.Index, "_chunk", spy)
    it = idx.irange(5, None)
    assert next(it) == 5 and reads == [index_module._FIRST_CHUNK]
    assert list(idx.irange(10, 15_000, reverse=True)) == list(range(15_000, 9, -1))
    assert max(reads) == index_module._ITER_CHUNK and len(reads) > 5
    it = idx.irange(0, None)
    next(it)
    idx[10**9] = 1
    with pytest.raises(RuntimeError):  # at the next chunk, at the latest
        list(it)


@pytest.mark.parametrize("dtype", ["uint64", "int64", "float64"])
def test_irange_and_navigation_bounds_outside_the_dtype(dtype):
    idx = nfl.Index.bulk_load(np.array([1, 5, 9], dtype=dtype), flow="off")
    assert list(idx.irange(-(2**70), 2**70)) == [1, 5, 9]
    assert list(idx.irange(-math.inf, math.inf, inclusive=(False, False), reverse=True)) == [9, 5, 1]
    assert list(idx.irange(1.5, 8.5)) == [5] and list(idx.irange(5, 5, (False, True))) == []
    assert list(idx.irange(9, 1)) == [] and list(idx.irange(2**70)) == [] and list(idx.irange(None, -1)) == []
    assert idx.floor_key(4.5) == 1 and idx.ceiling_key(4.5) == 5 and idx.lower_bound(4.5) == 5
    assert idx.lower_key(1) is None and idx.higher_key(9) is None and idx.floor_key(0.5) is None
    assert idx.floor_key(2**70) == 9 and idx.ceiling_key(-(2**70)) == 1 and idx.higher_key(math.inf) is None


@pytest.mark.parametrize("call", [
    lambda i: i.irange(math.nan), lambda i: i.irange(None, math.nan), lambda i: i.floor_key(math.nan),
    lambda i: i.higher_key(math.nan),
])
def test_nan_bounds_raise(idx, call):
    with pytest.raises(ValueError):
        call(idx)


@pytest.mark.parametrize("call", [
    lambda i: i.irange("a"), lambda i: i.lower_key(None), lambda i: i.irange(inclusive=True),
    lambda i: i.irange(inclusive=(True,)),
])
def test_bad_bounds_raise_type_error(idx, call):
    with pytest.raises(TypeError):
        call(idx)


def test_get_many_default(idx):
    assert idx.get_many([0, 5, 2], default=-1).tolist() == [30, -1, 10]
    values, found = idx.get_many([0, 5])
    assert found.tolist() == [True, False]
    with pytest.raises(ValueError):
        idx.get_many([0], default=2**63)


def test_repr_shows_the_first_items():
    idx = nfl.Index.bulk_load(np.arange(100, dtype=np.uint64), flow="off")
    assert "{0: 0, 1: 1, 2: 2, 3: 3, 4: 4, ...}" in repr(idx) and "100 keys" in repr(idx)
    assert repr(nfl.Index()).endswith("{}>")


# ---- the durable index ------------------------------------------------------

def test_durable_mapping_writes_are_logged(tmp_path):
    path = tmp_path / "db"
    with nfl.open(path) as db:
        assert isinstance(db, collections.abc.MutableMapping)
        db.update({1: 10, 2: 20, 3: 30, 4: 40})
        assert db.pop(1) == 10 and db.pop(1, "d") == "d" and db.popitem() == (4, 40)
        assert db.setdefault(5, 50) == 50 and db.setdefault(5) == 50
        assert db.replace(2, 21) and not db.replace(9, 1)
        assert db == {2: 21, 3: 30, 5: 50} and list(reversed(db)) == [5, 3, 2]
        assert list(db.irange(2, 5, (False, False))) == [3] and db.floor_key(4) == 3
        with pytest.raises(ValueError):
            db.update({6: 2**63})
    with nfl.open(path) as db:  # replayed from the log
        assert dict(db.items()) == {2: 21, 3: 30, 5: 50}
        db.clear()
        with pytest.raises(KeyError):
            db.popitem()
        with pytest.raises(KeyError):
            db.pop(2)
    with nfl.open(path) as db:
        assert len(db) == 0
