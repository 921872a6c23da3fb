"""Object values (nfl.ObjectIndex): the SortedDict model with any Python
objects as values (identity kept), reference counts on every path, the
garbage collector through the index, and memory that stays flat."""
import gc
import itertools
import resource
import sys
import weakref

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

import nfl
from index_model import IndexMachine

SETTINGS = settings(max_examples=40, stateful_step_count=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Token:
    """A value with identity only (== is `is`)."""

    def __repr__(self):
        return f"<Token {id(self):x}>"


VALUES = st.one_of(st.integers(), st.text(max_size=6), st.binary(max_size=6), st.none(),
                   st.tuples(st.integers(-5, 5), st.text(max_size=2)), st.builds(Token))


def generated(i):
    kind = i % 5
    return (i, str(i), str(i).encode(), None, Token())[kind] if kind != 0 else (i, "t")


class ObjectMachine(IndexMachine):
    """The model machine with object values; reads must return the very object stored."""

    value_dtype = "object"
    value_strategy = VALUES

    def value_array(self, values):
        return values if len(values) % 2 else tuple(values)  # lists and tuples both

    def fresh_values(self, rng, n):
        listed = [generated(i) for i in rng.integers(0, 1000, n).tolist()]
        return np.fromiter(listed, dtype=object, count=n), listed

    def other_value(self, value):
        return Token()

    @rule(data=st.data())
    def identity(self, data):
        """idx[k], get, get_many, range and iteration return the stored objects themselves."""
        if not self.model:
            return
        key = self.pick(data)
        if key in self.model:
            assert self.index[key] is self.model[key] and self.index.get(key) is self.model[key]
        keys = list(self.model.keys())[:50]
        values, found = self.index.get_many(np.array(keys, dtype=self.key_dtype))
        assert found.all() and all(v is self.model[k] for k, v in zip(keys, values))
        got_keys, got_values = self.index.scan(keys[0], 50)
        assert all(v is self.model[k] for k, v in zip(got_keys.tolist(), got_values))
        assert all(v is self.model[k] for k, v in self.index.items())

    @rule(data=st.data(), default=st.booleans())
    def get_many_identity(self, data, default):
        """The fused get_many over present and missing keys: the stored objects themselves, None or
        the very default object where missing; every reference it took is released with the array."""
        keys = [self.pick(data) for _ in range(data.draw(st.integers(0, 40)))]
        marker = Token()
        start = sys.getrefcount(marker)
        if default:
            values = self.index.get_many(self.np_keys(keys), default=marker)
            found = np.array([k in self.model for k in keys], dtype=bool)
        else:
            values, found = self.index.get_many(self.np_keys(keys))
        assert found.tolist() == [k in self.model for k in keys]
        missing = marker if default else None
        assert all((v is self.model[k]) if f else (v is missing) for k, v, f in zip(keys, values, found))
        del values, missing
        assert sys.getrefcount(marker) == start

    @rule(data=st.data(), taken=st.integers(0, 300), write=st.sampled_from(["set", "delete", "put_many"]))
    def irange_write_midway(self, data, taken, write):
        """A write while an irange is open.  Before its first read the cursor sees it; after, what
        it read is handed out as read (the objects read, even if replaced), then RuntimeError at
        its next chunk or its end; a cursor already at its end stays there."""
        lo = self.pick(data) if self.model and data.draw(st.booleans()) else None
        expect = list(self.model.irange(lo, None))
        before = {k: self.model[k] for k in expect}
        it = self.index.irange_items(lo, None)
        got = list(itertools.islice(it, taken))
        assert got == [(k, before[k]) for k in expect[:len(got)]]
        if write == "delete" and self.model:
            key = self.model.keys()[data.draw(st.integers(0, len(self.model) - 1))]
            del self.index[key]
            del self.model[key]
        else:
            key, value = self.pick(data), Token()
            if write == "put_many":
                self.index.put_many(self.np_keys([key]), [value])
            else:
                self.index[key] = value
            self.model[key] = value
        if taken == 0:  # no read yet
            assert list(it) == [(k, self.model[k]) for k in self.model.irange(lo, None)]
        elif len(got) < taken:  # ended before the write
            assert list(it) == []
        else:
            rest = []
            with pytest.raises(RuntimeError, match="changed"):
                for item in it:
                    rest.append(item)
            assert rest == [(k, before[k]) for k in expect[len(got):len(got) + len(rest)]]

    def teardown(self):
        if self.index is not None:
            assert all(v is self.model[k] for k, v in self.index.items())
        super().teardown()


def machine(dtype, flow):
    class Machine(ObjectMachine):
        key_dtype = dtype

        def __init__(self):
            if flow == "on":
                from test_index_flow import trained_flow
                type(self).flow = trained_flow(dtype)
            super().__init__()

    return Machine


TestUint64Objects = machine("uint64", "off").TestCase
TestInt64Objects = machine("int64", "off").TestCase
TestFloat64Objects = machine("float64", "off").TestCase
for _case in (TestUint64Objects, TestInt64Objects, TestFloat64Objects):
    _case.settings = SETTINGS

try:
    import torch  # noqa: F401
except ImportError:  # the flow-on machines need a trained flow
    pass
else:
    TestUint64ObjectsFlow = machine("uint64", "on").TestCase
    TestInt64ObjectsFlow = machine("int64", "on").TestCase
    TestFloat64ObjectsFlow = machine("float64", "on").TestCase
    for _case in (TestUint64ObjectsFlow, TestInt64ObjectsFlow, TestFloat64ObjectsFlow):
        _case.settings = settings(SETTINGS, max_examples=15)
del _case


# ---- construction ----------------------------------------------------------------

def test_object_index_made_by_value_dtype_and_by_object_values():
    assert type(nfl.Index("int64", "object")) is nfl.index.ObjectIndex
    assert nfl.Index("int64", "object").value_dtype == "object"
    keys = np.arange(3, dtype=np.uint64)
    for values in (["a", 1, None], ("a", 1, None), np.array(["a", 1, None], dtype=object)):
        idx = nfl.Index.bulk_load(keys, values)
        assert idx.value_dtype == "object" and list(idx.values()) == ["a", 1, None]
    assert nfl.Index.bulk_load(keys, [1, 2, 3]).value_dtype == "int64"  # ints keep the integer index
    assert nfl.Index.bulk_load(keys, [1, 2, 3], value_dtype="object").get(0) == 1
    assert nfl.Index.bulk_load(keys, value_dtype="object")[2] == 2  # positions, as objects
    nested = nfl.Index.bulk_load(keys, [(1, 2), (3, 4), [5]])
    assert nested[0] == (1, 2) and nested[2] == [5]


def test_bad_object_bulk_loads_refused():
    with pytest.raises(ValueError, match="differ in length"):
        nfl.Index.bulk_load(np.arange(2), ["a"])
    with pytest.raises(ValueError, match="1-D"):
        nfl.Index.bulk_load(np.arange(2), np.empty((2, 2), dtype=object))
    with pytest.raises(TypeError):
        nfl.Index("int64", "float32")


# ---- reference counts ------------------------------------------------------------

def test_refcounts_back_where_they_started():
    a, b = Token(), Token()
    start = sys.getrefcount(a), sys.getrefcount(b)
    idx = nfl.Index("int64", "object")
    idx[1] = a
    assert sys.getrefcount(a) == start[0] + 1
    idx[1] = b  # overwrite drops a
    assert sys.getrefcount(a) == start[0]
    idx[1] = a
    del idx[1]
    assert sys.getrefcount(a) == start[0]
    assert idx.insert(2, a) and not idx.insert(2, b)  # a kept, b refused
    assert sys.getrefcount(b) == start[1]
    assert idx.replace(2, b) and not idx.replace(3, a)
    assert sys.getrefcount(a) == start[0]
    assert idx.pop(2) is b
    assert sys.getrefcount(b) == start[1]
    assert idx.setdefault(4, a) is a and idx.setdefault(4, b) is a
    assert sys.getrefcount(b) == start[1] and sys.getrefcount(a) == start[0] + 1
    assert idx.delete(4) and sys.getrefcount(a) == start[0]
    idx.put_many([1, 2, 3, 1], [a, b, a, b])
    idx.put_many([1, 2], [a, a])
    assert idx.insert_many([1, 9], [b, b]).tolist() == [False, True]
    assert idx.delete_many([9, 3, 7]).tolist() == [True, True, False]
    idx.update({5: b})
    assert idx.popitem() == (5, b)
    assert idx.popitem(last=False) == (1, a)
    clone = idx.copy()
    clone.clear()
    del clone
    idx.clear()
    assert len(idx) == 0
    assert (sys.getrefcount(a), sys.getrefcount(b)) == start


def test_reads_hold_their_own_references():
    a = Token()
    start = sys.getrefcount(a)
    idx = nfl.Index.bulk_load(np.arange(10), [a] * 10)
    assert sys.getrefcount(a) == start + 10
    keys, values = idx.range(0, 10)
    values2, found = idx.get_many(np.arange(12))
    items = list(idx.items())
    del idx
    assert all(v is a for v in values) and all(v is a for v in values2[:10]) and values2[10] is None
    del keys, values, values2, found, items
    assert sys.getrefcount(a) == start


def test_get_many_across_chunks_refcounts():
    """get_many over several native chunks (4096 keys each), hits and misses interleaved: each
    hit the stored object, each miss the default; references back where they started."""
    a, b, dflt = Token(), Token(), Token()
    n = 10_000
    idx = nfl.Index.bulk_load(np.arange(0, 2 * n, 2), [a, b] * (n // 2))  # even keys only
    start = sys.getrefcount(a), sys.getrefcount(b), sys.getrefcount(dflt)
    probe = np.random.default_rng(3).permutation(2 * n)
    values = idx.get_many(probe, default=dflt)
    assert sys.getrefcount(dflt) == start[2] + n  # one per miss, held by the array
    expect = [dflt if k % 2 else (a if k % 4 == 0 else b) for k in probe.tolist()]
    assert all(v is e for v, e in zip(values, expect))
    pairs, found = idx.get_many(probe)
    assert found.tolist() == [k % 2 == 0 for k in probe.tolist()]
    assert all((v is e) if f else v is None for v, e, f in zip(pairs, expect, found))
    del values, pairs, expect
    assert (sys.getrefcount(a), sys.getrefcount(b), sys.getrefcount(dflt)) == start
    assert idx.get_many(np.array([], dtype=np.int64), default=dflt).size == 0


def test_failed_bulk_load_leaks_nothing():
    a = Token()
    start = sys.getrefcount(a)

    def attempt():
        with pytest.raises(ValueError, match="duplicate"):
            nfl.Index.bulk_load(np.array([1, 2, 1], dtype=np.int64), [a, a, a])

    attempt()
    gc.collect()
    assert sys.getrefcount(a) == start


def test_dealloc_releases_every_value():
    tokens = [Token() for _ in range(5000)]
    refs = [weakref.ref(t) for t in tokens]
    idx = nfl.Index.bulk_load(np.arange(5000, dtype=np.uint64), tokens)
    del tokens
    assert all(r() is not None for r in refs)
    del idx
    assert all(r() is None for r in refs)


def test_gc_collects_a_cycle_through_the_index():
    idx = nfl.Index("uint64", "object")
    holder = Token()
    holder.index = idx  # a value that refers back to the index
    idx[1] = holder
    idx[2] = idx  # and the index storing itself
    gone_index, gone_holder = weakref.ref(idx), weakref.ref(holder)
    del idx, holder
    gc.collect()
    assert gone_index() is None and gone_holder() is None


def _rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def _churn(rounds, n):
    idx = nfl.Index("int64", "object")
    keys = np.arange(n, dtype=np.int64)
    for r in range(rounds):
        for k in range(0, n, 7):
            idx[k] = [r, k]  # fresh objects, overwrites
        idx.put_many(keys, [bytes(16) + bytes([r % 256])] * n)
        idx.insert_many(keys[::3], [object() for _ in range(keys[::3].size)])
        idx.delete_many(keys[::2])
        for k in range(1, n, 5):
            idx.pop(k, None)
        idx.get_many(keys, default=keys)  # the fused batch read, missing keys too
    idx.clear()


@pytest.mark.parametrize("rounds", [pytest.param(30, id="short"),
                                    pytest.param(600, id="long", marks=pytest.mark.slow)])
def test_rss_flat_over_many_writes(rounds):
    _churn(3, 20_000)  # warm the allocators
    gc.collect()
    before = _rss_kib()
    _churn(rounds, 20_000)
    gc.collect()
    grown = _rss_kib() - before
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB over {rounds} rounds"
