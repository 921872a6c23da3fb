"""Batch calls split over threads inside the C core (threads= of the batch methods).

Whatever the thread count, a batch must give exactly the results of one
thread: the same values and flags, the same final contents, the last write
of a repeated key winning.  Batches here mix present keys, misses and
repeats, span several write chunks (native/parallel.c: WRITE_CHUNK), and run
on every key dtype with the flow off and on.  The C side alone runs under
ThreadSanitizer here and under ASan/UBSan in test_native_sanitized.py
(native/tests/test_parallel.c).
"""
import functools
import importlib.util
import os
import pathlib
import subprocess
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nfl
from nfl import _boundary
from nfl import index as index_module
from index_model import initial_keys

_BUILD = pathlib.Path(__file__).resolve().parent.parent / "native" / "fuzz" / "build.py"
_spec = importlib.util.spec_from_file_location("nfl_fuzz_build", _BUILD)
native_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native_build)

DTYPES = ["uint64", "int64", "float64"]
THREADS = [1, 2, 4]
WRITE_BATCH = 80_000  # more than two write chunks of 32768


@functools.lru_cache(maxsize=None)
def base_keys(dtype):
    return initial_keys("lognormal", 60_000, 3, dtype)


@functools.lru_cache(maxsize=None)
def trained_flow(dtype):
    pytest.importorskip("torch", reason="training a flow needs torch (pip install 'nfl[train]')")
    return nfl.Flow.train(base_keys(dtype), sample=0.5, epochs=3, seed=0, progress=False)


def build(dtype, flow):
    keys = base_keys(dtype)
    values = np.arange(keys.size, dtype=np.int64) * 7
    idx = nfl.Index.bulk_load(keys, values, flow=trained_flow(dtype) if flow == "on" else "off")
    assert (idx.flow is not None) == (flow == "on")
    return idx


def queries(dtype, n, seed):
    """n keys: present ones, repeats of them and misses (between and beyond the present keys)."""
    keys = base_keys(dtype)
    rng = np.random.default_rng(seed)
    present = keys[rng.integers(0, keys.size, n)]
    if dtype == "float64":
        misses = np.nextafter(present, np.inf)
    else:
        misses = present + np.array(1, dtype=dtype)  # lognormal keys are far apart
    q = np.where(rng.random(n) < 0.6, present, misses)
    repeats = rng.random(n) < 0.15
    q[repeats] = q[rng.integers(0, n, int(repeats.sum()))]
    return q


def as_dict(idx):
    keys, values = idx._export()
    return dict(zip(keys.tolist(), values.view(idx.value_dtype).tolist()))


@pytest.mark.parametrize("flow", ["off", "on"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_reads_are_the_same_on_any_thread_count(dtype, flow):
    idx = build(dtype, flow)
    q = queries(dtype, 100_000, 1)
    ref = as_dict(idx)
    want_found = np.array([k in ref for k in q.tolist()])
    want_values = np.array([ref.get(k, 0) for k in q.tolist()], dtype=np.int64)
    assert 0.3 < want_found.mean() < 0.9
    for threads in THREADS:
        values, found = idx.get_many(q, threads=threads)
        assert (found == want_found).all(), threads
        assert (values == want_values).all(), threads
        assert (idx.get_many(q, default=-1, threads=threads) == np.where(want_found, want_values, -1)).all()
        assert (idx.contains_many(q, threads=threads) == want_found).all(), threads


def write_batch(dtype, seed):
    """WRITE_BATCH keys (hits, misses, repeats within and across write chunks) and their values."""
    q = queries(dtype, WRITE_BATCH, seed)
    q[WRITE_BATCH - 100:] = q[:100]  # the same keys again, two chunks later
    return q, np.random.default_rng(seed).integers(-10**12, 10**12, WRITE_BATCH)


@pytest.mark.parametrize("flow", ["off", "on"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_writes_are_the_same_on_any_thread_count_and_the_last_wins(dtype, flow):
    base = build(dtype, flow)
    q, v = write_batch(dtype, 2)
    ref = as_dict(base)
    want_existed = []
    for k, x in zip(q.tolist(), v.tolist()):
        want_existed.append(k in ref)
        ref[k] = x  # upsert: the last write of a key wins
    results = {}
    for threads in THREADS:
        idx = base.copy()
        idx.put_many(q, v, threads=threads)
        assert as_dict(idx) == ref, threads
        idx._check()
        inserted = base.copy().insert_many(q, v + 1, threads=threads)
        fresh = base.copy()
        fresh.insert_many(q, v + 1, threads=threads)
        deleted = fresh.delete_many(q[::-1], threads=threads)
        fresh._check()
        results[threads] = (inserted, deleted, as_dict(fresh))
    assert not results[1][0][np.array(want_existed)].any()
    for threads in THREADS[1:]:
        assert all((a == b) if isinstance(a, dict) else (a == b).all()
                   for a, b in zip(results[1], results[threads])), threads
    gone = set(q.tolist())
    assert results[1][2] == {k: x for k, x in as_dict(base).items() if k not in gone}


@pytest.mark.parametrize("threads", [2, 4])
def test_update_mode_adds_no_key_on_any_thread_count(threads):
    """replace-style batch writes (NFL_UPDATE through put_many_threads) leave absent keys absent."""
    base = build("uint64", "off")
    q, v = write_batch("uint64", 5)
    one, many = base.copy(), base.copy()
    e1 = one._put_many(q, v, _boundary.UPDATE, 1)
    e2 = many._put_many(q, v, _boundary.UPDATE, threads)
    assert (e1 == e2).all() and as_dict(one) == as_dict(many) and len(many) == len(base)


POOL = st.integers(0, 3000)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batches=st.lists(st.tuples(st.sampled_from(["put", "insert", "delete", "get"]),
                                  st.lists(POOL, min_size=0, max_size=500),
                                  st.integers(2, 5)), min_size=1, max_size=8))
def test_batch_sequences_match_a_dict_on_any_thread_count(batches):
    """Random batch sequences from a small key pool (many repeats): threaded index == one-thread index == dict."""
    start = np.arange(0, 3000, 3, dtype=np.uint64)
    one = nfl.Index.bulk_load(start, flow="off")
    many = nfl.Index.bulk_load(start, flow="off")
    ref = dict(zip(start.tolist(), range(start.size)))
    for i, (op, keys, threads) in enumerate(batches):
        k = np.array(keys, dtype=np.uint64)
        v = np.arange(k.size, dtype=np.int64) + 1000 * i
        if op == "get":
            got1, got = one.get_many(k, default=-1, threads=1), many.get_many(k, default=-1, threads=threads)
            assert (got1 == got).all() and got.tolist() == [ref.get(x, -1) for x in keys]
        elif op == "delete":
            d1, d = one.delete_many(k, threads=1), many.delete_many(k, threads=threads)
            want = [ref.pop(x, None) is not None for x in keys]
            assert (d1 == d).all() and d.tolist() == want
        else:
            insert = op == "insert"
            r1 = one.insert_many(k, v, threads=1) if insert else one.put_many(k, v, threads=1)
            r = many.insert_many(k, v, threads=threads) if insert else many.put_many(k, v, threads=threads)
            want = []
            for x, y in zip(keys, v.tolist()):
                want.append(x not in ref)
                if not insert or x not in ref:
                    ref[x] = y
            if insert:
                assert (r1 == r).all() and r.tolist() == want
    assert as_dict(many) == as_dict(one) == ref
    many._check()


@pytest.mark.parametrize("bad", [0, -1, _boundary.MAX_THREADS + 1])
def test_threads_out_of_range_raise_value_error(bad):
    idx = build("uint64", "off")
    k = base_keys("uint64")[:10]
    for call in (lambda: idx.get_many(k, threads=bad), lambda: idx.contains_many(k, threads=bad),
                 lambda: idx.put_many(k, k.astype(np.int64), threads=bad),
                 lambda: idx.insert_many(k, k.astype(np.int64), threads=bad),
                 lambda: idx.delete_many(k, threads=bad)):
        with pytest.raises(ValueError, match="threads"):
            call()
    assert len(idx) == base_keys("uint64").size  # nothing was written


@pytest.mark.parametrize("bad", [1.5, 2.0, "2", True, [2]])
def test_threads_of_another_type_raise_type_error(bad):
    idx = build("uint64", "off")
    k = base_keys("uint64")[:10]
    for call in (lambda: idx.get_many(k, threads=bad), lambda: idx.contains_many(k, threads=bad),
                 lambda: idx.put_many(k, k.astype(np.int64), threads=bad),
                 lambda: idx.delete_many(k, threads=bad)):
        with pytest.raises(TypeError, match="threads"):
            call()
    assert len(idx) == base_keys("uint64").size


def test_threads_accepts_numpy_integers_and_none():
    idx = build("uint64", "off")
    k = base_keys("uint64")
    assert idx.contains_many(k, threads=np.int32(3)).all()
    assert idx.contains_many(k, threads=None).all()


def test_object_index_checks_threads_and_reads_on_one_thread():
    keys = np.arange(1000, dtype=np.uint64)
    idx = nfl.Index.bulk_load(keys, [str(k) for k in keys.tolist()])
    values, found = idx.get_many(keys, threads=2)
    assert found.all() and values[7] == "7"
    idx.put_many(keys[:3], ["a", "b", "c"], threads=4)
    assert idx.delete_many(keys[:2], threads=2).all() and idx[2] == "c"
    with pytest.raises(ValueError, match="threads"):
        idx.get_many(keys, threads=0)
    with pytest.raises(TypeError, match="threads"):
        idx.delete_many(keys, threads="2")


def test_default_thread_count_follows_batch_size_and_cores():
    per = index_module._READ_KEYS_PER_THREAD
    cores = len(os.sched_getaffinity(0))
    assert index_module._threads(None, 0, per) == 1
    assert index_module._threads(None, 2 * per - 1, per) == 1
    assert index_module._threads(None, 2 * per, per) == min(2, cores)
    assert index_module._threads(None, 10**9, per) == cores
    assert index_module._threads(3, 5, per) == 3  # an explicit count is the caller's


def test_threaded_reads_see_one_whole_threaded_write():
    """A threaded get_many never mixes two threaded put_many generations."""
    keys = np.arange(100_000, dtype=np.uint64) * np.uint64(5)
    tag = (keys * np.uint64(0x9E3779B97F4A7C15) >> np.uint64(40)).astype(np.int64)
    idx = nfl.Index.bulk_load(keys, tag, flow="off")
    stop, errors, rounds = threading.Event(), [], [0, 0]

    def writer():
        g = 0
        while not stop.is_set():
            g += 1
            idx.put_many(keys, (g << 32) | tag, threads=2)
            rounds[0] += 1

    def reader():
        try:
            while not stop.is_set():
                values, found = idx.get_many(keys, threads=2)
                assert found.all() and ((values & 0xFFFFFFFF) == tag).all()
                assert np.unique(values >> 32).size == 1, "a read mixed two writes"
                rounds[1] += 1
        except BaseException as exc:  # noqa: BLE001  (re-raised below)
            errors.append(exc)
            stop.set()

    pool = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in pool:
        t.start()
    stop.wait(1.5)
    stop.set()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    assert rounds[0] > 1 and rounds[1] > 1, rounds


def test_parallel_core_under_thread_sanitizer(tmp_path):
    """native/tests/test_parallel.c under ThreadSanitizer: no data race between a call's threads."""
    cc = native_build.compiler("clang", "gcc")
    if cc is None:
        pytest.skip("no C compiler for the ThreadSanitizer build")
    exe = native_build.build(native_build.NATIVE / "tests" / "test_parallel.c", tmp_path / "test_parallel",
                             ["-fsanitize=thread"], cc=cc)
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1:exitcode=66")
    done = subprocess.run([str(exe), "1", "40000"], capture_output=True, text=True, timeout=600, env=env)
    assert "ThreadSanitizer" not in done.stderr, done.stderr[-4000:]
    assert done.returncode == 0 and "passed" in done.stdout, done.stdout + done.stderr[-4000:]
