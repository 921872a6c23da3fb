"""nfl._index.Cursor, the native iterator behind irange, iteration and the
views: chunked reads, exhaustion, changes during iteration, and the
references it holds to object values."""
import gc
import sys
import threading
import weakref

import numpy as np
import pytest

import nfl
from nfl import _index
from nfl import index as index_module


class Token:
    pass


def ints(n, dtype="uint64"):
    return nfl.Index.bulk_load(np.arange(n, dtype=dtype), np.arange(n) * 10, flow="off")


@pytest.mark.parametrize("n", [0, 1, _index.CURSOR_FIRST - 1, _index.CURSOR_FIRST, _index.CURSOR_FIRST + 1,
                               3 * _index.CURSOR_CHUNK + 7])
@pytest.mark.parametrize("dtype", ["uint64", "int64", "float64"])
def test_every_entry_once_at_chunk_edges(n, dtype):
    idx = ints(n, dtype)
    keys = np.arange(n, dtype=dtype).tolist()
    assert list(idx) == keys and list(reversed(idx)) == keys[::-1]
    assert list(idx.values()) == [10 * i for i in range(n)]
    assert list(idx.items()) == list(zip(keys, range(0, 10 * n, 10)))
    assert all(type(k) is type(keys[0]) for k in idx) if n else True
    assert list(idx.irange(1, n - 2, reverse=True)) == keys[1:n - 1][::-1]


def _clustered_keys(seed):
    """Tight runs of keys far apart, some with gaps of 1: a tree with buckets and children."""
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.choice(2**60, 40, replace=False))
    runs = [s + np.cumsum(rng.integers(1, 3 if i % 2 else 50, rng.integers(20, 400)))
            for i, s in enumerate(starts)]
    spread = rng.integers(0, 2**63, 3000, dtype=np.uint64)
    return np.unique(np.concatenate([np.concatenate(runs).astype(np.uint64), spread]))


@pytest.mark.parametrize("seed", range(3))
def test_irange_bounds_on_every_kind_of_slot(seed):
    """Bounds that are keys or their neighbours land on entries, buckets and children (the walk checks
    bounds only in each bound's own slot), spanning a few to a few hundred keys, or none (lo above hi)."""
    import bisect

    keys = _clustered_keys(seed)
    idx = nfl.Index.bulk_load(keys, np.arange(keys.size), flow="off")
    for k in keys[::7].tolist():  # grow children under inserts too
        idx[k + 1] = 0
    stats = idx.stats()
    assert stats["max_depth"] >= 2 and stats["buckets"] > 0
    ref = list(idx)
    assert ref == sorted(set(keys.tolist()) | {k + 1 for k in keys[::7].tolist()})
    rng = np.random.default_rng(seed)
    for _ in range(300):
        i = int(rng.integers(0, len(ref)))
        j = min(len(ref) - 1, i + int(rng.integers(-3, 300)))
        lo, hi = ref[i] + int(rng.integers(-1, 2)), ref[max(j, 0)] + int(rng.integers(-1, 2))
        for lo_in in (True, False):
            for hi_in in (True, False):
                a = bisect.bisect_left(ref, lo) if lo_in else bisect.bisect_right(ref, lo)
                b = bisect.bisect_right(ref, hi) if hi_in else bisect.bisect_left(ref, hi)
                expect = ref[a:b]
                for reverse in (False, True):
                    got = list(idx.irange(lo, hi, (lo_in, hi_in), reverse))
                    assert got == (expect[::-1] if reverse else expect), (lo, hi, lo_in, hi_in, reverse)


def test_exhausted_cursor_stays_exhausted():
    idx = ints(300)
    it = iter(idx)
    assert isinstance(it, _index.Cursor) and iter(it) is it
    assert len(list(it)) == 300
    assert next(it, "end") == "end"
    idx[1000] = 1  # a write after the end: the finished cursor does not see it
    assert next(it, "end") == "end"


def test_strict_iteration_raises_at_the_next_entry():
    idx = ints(10)
    for view in (idx, idx.keys(), idx.values(), idx.items()):
        it = iter(view)
        next(it)
        idx[3] = 99
        with pytest.raises(RuntimeError, match="changed"):
            next(it)
        assert next(it, "end") == "end"  # the error ends the cursor


def test_strict_iteration_raises_after_the_last_entry():
    idx = ints(3)
    it = iter(idx.items())
    assert [next(it) for _ in range(3)] == [(0, 0), (1, 10), (2, 20)]
    del idx[0]
    with pytest.raises(RuntimeError):
        next(it)


def test_irange_sees_a_change_at_the_next_chunk():
    idx = ints(1000)
    it = idx.irange(0, None)
    first = [next(it) for _ in range(_index.CURSOR_FIRST)]
    assert first == list(range(_index.CURSOR_FIRST))
    idx.put_many(np.array([5000], dtype=np.uint64), np.array([1]))  # a batch write, seen by the version too
    with pytest.raises(RuntimeError):
        next(it)


def test_irange_sees_a_change_at_its_end():
    idx = ints(10)
    it = idx.irange(2, 4)
    assert [next(it) for _ in range(3)] == [2, 3, 4]
    idx[100] = 1
    with pytest.raises(RuntimeError):
        next(it)


def test_changes_before_the_first_read_are_seen():
    idx = ints(5)
    it = iter(idx.items())
    idx[7] = 70
    assert list(it)[-1] == (7, 70)


def test_cursor_keeps_its_index_alive():
    idx = ints(200)
    ref = weakref.ref(idx)
    it = idx.irange(10, None)
    del idx
    gc.collect()
    assert ref() is not None and next(it) == 10
    del it
    gc.collect()
    assert ref() is None


def test_object_values_stay_alive_while_buffered():
    idx = nfl.Index("uint64", "object")
    tokens = [Token() for _ in range(10)]
    idx.update(enumerate(tokens))
    it = idx.irange(0, None)  # not strict: buffered values are handed out after a write
    values = iter(idx.values())
    next(values)
    key = next(it)
    assert key == 0
    items = idx.irange_items(0, None)
    assert next(items)[1] is tokens[0]
    refs = [weakref.ref(t) for t in tokens]
    del tokens
    idx.clear()  # the index drops its references; the buffered ones remain
    assert all(r() is not None for r in refs[1:])
    got = []
    with pytest.raises(RuntimeError):  # at the end: the index changed
        for _, v in items:
            got.append(v)
    assert got == [r() for r in refs[1:]]
    del got, v
    del values
    gc.collect()
    assert all(r() is None for r in refs)
    assert next(it, "end") == 1  # the keys were read before the clear


def test_refcounts_after_iterating_and_abandoning():
    idx = nfl.Index("int64", "object")
    value = object()
    for i in range(1000):
        idx[i - 500] = value
    start = sys.getrefcount(value)
    for _ in range(3):
        assert all(v is value for v in idx.values())
        assert all(v is value for _, v in reversed(idx.items()))
        it = idx.irange_items(-10, 10)
        next(it)
        del it  # abandoned with buffered references
        assert list(idx.irange(-3, 3)) == [-3, -2, -1, 0, 1, 2, 3]
    assert sys.getrefcount(value) == start


def test_gc_collects_a_cycle_through_a_cursor():
    idx = nfl.Index("uint64", "object")
    holder = Token()
    idx[1] = holder
    it = iter(idx.values())
    holder.cursor = it  # index -> holder -> cursor -> index
    next(it, None)
    ref = weakref.ref(holder)
    del idx, holder, it
    gc.collect()
    assert ref() is None


def test_threads_iterate_beside_writers():
    idx = ints(20_000)
    errors = []

    def scan():
        try:
            for _ in range(20):
                keys = list(idx.irange(1000, 3000))
                assert keys == sorted(keys)
        except RuntimeError:
            pass  # a write between chunks: allowed
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def write():
        for i in range(2000):
            idx[50_000 + i] = i
            idx.put_many(np.array([60_000 + i], dtype=np.uint64), np.array([i]))

    threads = [threading.Thread(target=scan) for _ in range(2)] + [threading.Thread(target=write)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert list(idx.irange(50_000, 51_999)) == list(range(50_000, 52_000))


def test_cursor_arguments_are_checked():
    idx = ints(3)
    with pytest.raises(ValueError):
        idx._cursor(0, 0, index_module._ALL, 3, True)
    with pytest.raises(TypeError):
        idx._cursor(0, 0, index_module._ALL, 0)
    with pytest.raises(TypeError):
        _index.Cursor()


def test_items_held_by_the_caller_are_never_reused():
    idx = ints(300)
    it = iter(idx.items())
    first, second = next(it), next(it)
    assert (first, second) == ((0, 0), (1, 10))
    kept = [pair for pair in it]
    assert kept == [(i, 10 * i) for i in range(2, 300)] and first == (0, 0)
    seen = [(k, v) for k, v in idx.items()]  # each tuple dropped at once: one reused
    assert seen == list(zip(range(300), range(0, 3000, 10)))


def test_a_reused_item_tuple_is_seen_by_the_gc():
    idx = nfl.Index("uint64", "object")
    idx.update({1: 1, 2: 2})
    it = iter(idx.items())
    for _ in it:  # the cursor's tuple now held only ints
        gc.collect()
    holder = Token()
    idx.clear()
    idx.update({1: 1, 2: holder})
    it = iter(idx.items())
    next(it)
    key, value = next(it)
    holder.cursor = it  # holder -> cursor -> its tuple -> holder
    ref = weakref.ref(holder)
    del idx, holder, it, value
    gc.collect()
    assert ref() is None


def test_abandoned_cursors_free_their_buffers():
    import tracemalloc

    idx = ints(10_000)
    objects = nfl.Index("uint64", "object")
    objects.update((i, str(i)) for i in range(10_000))

    def churn():
        for _ in range(200):
            for m in (idx, objects):
                it = m.irange_items(0, None)
                for _ in range(300):  # past the first chunk, into the second
                    next(it)
                next(iter(m.values()))
        gc.collect()

    churn()  # warm-up: interned ints, free lists
    tracemalloc.start()
    try:
        churn()
        before = tracemalloc.get_traced_memory()[0]
        churn()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024


@pytest.mark.parametrize("n", [0, 1, 99, _index.CURSOR_FIRST, _index.CURSOR_FIRST + 1, 5000])
def test_length_hint_makes_the_first_read(n):
    """operator.length_hint: the first chunk, read then (exact once the range is exhausted);
    later hints count what is buffered; the first read still notes the writes before it."""
    import operator

    idx = ints(6000)
    it = idx.irange(100, 100 + n - 1) if n else idx.irange(7000, None)
    first = min(n, _index.CURSOR_FIRST)
    assert it._reads == 0 and operator.length_hint(it) == first and it._reads == 1
    assert operator.length_hint(it) == first and it._reads == 1  # no second read
    assert list(it) == list(range(100, 100 + n))
    assert operator.length_hint(it) == 0
    later = idx.irange(0, None)
    idx[10_000] = 1  # before the first read: seen, not an error
    assert operator.length_hint(later) == _index.CURSOR_FIRST
    assert list(later)[-1] == 10_000
    stale = idx.irange(0, None)
    operator.length_hint(stale)
    idx[10_001] = 1  # after the first read: RuntimeError at the next chunk
    with pytest.raises(RuntimeError):
        list(stale)


def test_cursors_interleaved_share_no_buffer():
    """Cursors alive together, ended in any order, each with its own chunks (the spare chunk
    buffer a finished cursor leaves is taken by one cursor only)."""
    idx = ints(20_000)
    objects = nfl.Index.bulk_load(np.arange(20_000), [str(i) for i in range(20_000)])
    its = [idx.irange(0, None), objects.irange_items(5, None), idx.irange(100, 150),
           idx.irange(None, 19_000, reverse=True)]
    expect = [iter(range(20_000)), ((i, str(i)) for i in range(5, 20_000)), iter(range(100, 151)),
              iter(range(19_000, -1, -1))]
    done = [False] * len(its)
    step = 0
    while not all(done):
        for j, (it, ex) in enumerate(zip(its, expect)):
            if done[j]:
                continue
            for _ in range(1 + (step * 7919 + j * 104729) % 700):  # uneven strides: chunks end apart
                got, want = next(it, None), next(ex, None)
                assert got == want
                if got is None:
                    done[j] = True
                    break
            if j == 2 and done[j]:
                its.append(idx.irange(3, 9))  # a new cursor takes the spare buffer mid-way
                expect.append(iter(range(3, 10)))
                done.append(False)
        step += 1
