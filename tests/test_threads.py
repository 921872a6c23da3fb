"""One index shared by threads: what the readers-writer lock must guarantee.

Batch calls release the GIL, so these threads really run together in the C
core.  Values are written so that readers can validate them on their own:
value = generation << 32 | tag(key), so a value that belongs to another key,
or a batch that mixes two writes, shows.  The mixed stress test runs for
NFL_STRESS_SECONDS (default 5) and checks the index exactly against a
lock-protected reference at quiescent points and at the end.
"""
import importlib.util
import os
import pathlib
import random
import subprocess
import threading
import time

import numpy as np
import pytest

import nfl

_BUILD = pathlib.Path(__file__).resolve().parent.parent / "native" / "fuzz" / "build.py"
_spec = importlib.util.spec_from_file_location("nfl_fuzz_build", _BUILD)
native_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native_build)

STRESS_SECONDS = float(os.environ.get("NFL_STRESS_SECONDS", "5"))
TAG = (1 << 32) - 1


def tag(keys):
    """A 32-bit fingerprint of each key (uint64 array -> int64 array)."""
    k = np.asarray(keys, dtype=np.uint64)
    return ((k * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)).astype(np.int64)


def value(keys, generation):
    return (np.int64(generation) << np.int64(32)) | tag(keys)


def generation_of(keys, values):
    """The generations of values; AssertionError if one is not keys' own."""
    values = np.asarray(values, dtype=np.int64)
    assert ((values & TAG) == tag(keys)).all(), "a value carries another key's tag"
    return values >> 32


def run_threads(targets, seconds=None):
    """Runs the callables in threads (each gets a stop Event); re-raises the first error."""
    stop, errors = threading.Event(), []

    def guard(fn):
        try:
            fn(stop)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=guard, args=(fn,)) for fn in targets]
    for t in threads:
        t.start()
    if seconds is not None:
        stop.wait(seconds)
        stop.set()
    for t in threads:
        t.join()
    if errors:  # the original error, not the broken barriers it caused elsewhere
        errors.sort(key=lambda e: isinstance(e, threading.BrokenBarrierError))
        raise errors[0]


def generation_index(n=20_000, step=3):
    keys = np.arange(n, dtype=np.uint64) * np.uint64(step)
    return nfl.Index.bulk_load(keys, value(keys, 0), flow="off"), keys


def generation_writer(idx, keys, last):
    """Rewrites every key with a new generation, one put_many per generation."""

    def write(stop):
        g = 0
        while not stop.is_set():
            g += 1
            idx.put_many(keys, value(keys, g))
            last[0] = g

    return write


# ---- readers against one writer ---------------------------------------------------


def test_native_calls_release_the_gil():
    """Python code runs in another thread while a long get_many is in C."""
    keys = np.arange(2_000_000, dtype=np.uint64)
    idx = nfl.Index.bulk_load(keys, flow="off")
    big = np.tile(keys, 3)
    ticks, inside = [0], threading.Event()

    def lookup(stop):
        inside.set()
        idx.get_many(big)
        stop.set()

    def count(stop):
        inside.wait()
        while not stop.is_set():
            ticks[0] += 1

    start = time.perf_counter()
    run_threads([lookup, count])
    assert ticks[0] > 1000, f"only {ticks[0]} Python steps during {time.perf_counter() - start:.2f} s in C"


def test_batch_reads_see_one_whole_write():
    """get_many, contains_many and scan each see exactly one generation, never older than before."""
    idx, keys = generation_index()
    last, counts = [0], {"get_many": 0, "scan": 0}

    def reader(stop):
        seen = 0
        while not stop.is_set():
            values, found = idx.get_many(keys)
            assert found.all() and idx.contains_many(keys).all()
            gens = np.unique(generation_of(keys, values))
            assert gens.size == 1, f"get_many mixed generations {gens[:5]}"
            assert gens[0] >= seen, "a later read saw an older generation"
            seen = gens[0]
            ks, vs = idx.scan(0, keys.size)
            assert (ks == keys).all()
            assert np.unique(generation_of(ks, vs)).size == 1, "scan mixed generations"
            k = int(keys[random.randrange(keys.size)])
            assert generation_of([k], [idx[k]])[0] >= seen
            counts["get_many"] += 1

    run_threads([generation_writer(idx, keys, last), reader, reader], seconds=2.0)
    assert last[0] > 2 and counts["get_many"] > 2, (last, counts)


def test_len_sees_whole_batches():
    """len() during batch inserts and deletes of B keys is N or N + B, nothing between."""
    n, b = 50_000, 4096
    idx = nfl.Index.bulk_load(np.arange(n, dtype=np.uint64), flow="off")
    extra = np.arange(n, n + b, dtype=np.uint64)
    sizes = set()

    def writer(stop):
        while not stop.is_set():
            assert idx.insert_many(extra, extra.astype(np.int64)).all()
            assert idx.delete_many(extra).all()

    def reader(stop):
        while not stop.is_set():
            sizes.add(len(idx))

    run_threads([writer, reader], seconds=1.0)
    assert sizes <= {n, n + b}, sorted(sizes)[:10]


def test_range_sees_one_whole_write():
    idx, keys = generation_index()
    last, torn = [0], []

    def reader(stop):
        for _ in range(300):
            ks, vs = idx.range(0, int(keys[-1]) + 1)
            assert ks.size == keys.size
            gens = np.unique(generation_of(ks, vs))
            if gens.size > 1:
                torn.append(gens)
        stop.set()

    run_threads([generation_writer(idx, keys, last), reader])
    assert not torn, f"{len(torn)} of 300 range() results mixed generations, e.g. {torn[0]}"


def test_scan_keeps_keys_present_throughout():
    idx = nfl.Index.bulk_load(np.arange(1000, 2000, dtype=np.uint64), flow="off")
    short = [0]

    def churn(stop):
        k = 0
        while not stop.is_set():
            idx.insert(k % 1000, 0)
            idx.delete(k % 1000)
            k += 1

    def reader(stop):
        for _ in range(20_000):
            ks, _ = idx.scan(0, 10**9)
            short[0] += ks[-1] != 1999
        stop.set()

    run_threads([churn, reader])
    assert short[0] == 0, f"{short[0]} of 20000 scans lost key 1999"


# ---- writers against writers --------------------------------------------------------


def test_no_lost_updates_disjoint_and_overlapping():
    """Concurrent put_many: disjoint keys all land; overlapping batches land whole."""
    n, threads, rounds = 20_000, 4, 30
    idx = nfl.Index(key_dtype="uint64")
    shared = np.arange(n, dtype=np.uint64) * np.uint64(threads + 1)
    inserted = np.zeros(n, dtype=np.int64)
    lock = threading.Lock()

    def writer(t):
        own = shared + np.uint64(t + 1)  # disjoint from the shared keys and from each other

        def write(stop):
            won = idx.insert_many(shared, value(shared, t))
            with lock:
                inserted[:] += won
            for r in range(1, rounds + 1):
                idx.put_many(own, value(own, r))
                idx.put_many(shared, value(shared, t * 1000 + r))
            for k in own[::97].tolist():
                idx[k] = int(value([k], rounds + 1)[0])

        return write

    run_threads([writer(t) for t in range(threads)])
    assert (inserted == 1).all(), "a shared key was inserted by no thread or by two"
    assert len(idx) == n * (threads + 1)
    values, found = idx.get_many(shared)
    assert found.all()
    last = np.unique(generation_of(shared, values))
    assert last.size == 1 and last[0] % 1000 == rounds, f"overlapping batches interleaved: {last}"
    for t in range(threads):
        own = shared + np.uint64(t + 1)
        values, found = idx.get_many(own)
        want = np.full(n, rounds, dtype=np.int64)
        want[::97] = rounds + 1
        assert found.all() and (generation_of(own, values) == want).all(), f"thread {t} lost writes"


# ---- iterators ----------------------------------------------------------------------


def test_iterator_with_a_concurrent_writer_raises_or_is_consistent():
    """items() during writes from another thread: RuntimeError, or a snapshot (one generation)."""
    idx, keys = generation_index(n=30_000)
    last, outcomes = [0], {"raised": 0, "completed": 0}

    def iterate(stop):
        for _ in range(20):
            got = []
            try:
                for k, v in idx.items():
                    got.append((k, v))
            except RuntimeError as exc:
                assert "changed" in str(exc)
                outcomes["raised"] += 1
            else:
                outcomes["completed"] += 1
                assert len(got) == keys.size
                gens = generation_of(keys[spread], [v for _, v in got[spread]])
                assert np.unique(gens).size == 1, "a completed iteration saw two writes"
            if got:
                ks = np.array([k for k, _ in got], dtype=np.uint64)
                assert (np.diff(ks.astype(np.int64)) > 0).all(), "iteration not ascending"
                generation_of(ks, [v for _, v in got])
        stop.set()

    spread = slice(0, None, 300)  # 100 keys in every chunk the iterator reads

    def slow_writer(stop):
        g = 0
        while not stop.is_set():
            g += 1
            idx.put_many(keys[spread], value(keys[spread], g))
            time.sleep(random.choice([0.002, 0.05]))

    run_threads([slow_writer, iterate])
    assert outcomes["raised"] > 0, outcomes


# ---- the mixed stress test ------------------------------------------------------------


class Partitioned:
    """A reference for 4 writers: thread t alone writes keys with key % 4 == t.

    A thread's own keys are exact in its view (nobody else writes them), so
    its reads and scans are checked exactly there; other keys must carry
    their own tag.  The union, under a lock, is the whole reference.
    """

    def __init__(self, threads, span):
        self.threads, self.span = threads, span
        self.lock = threading.Lock()
        self.ref = {}  # key -> value, every thread's writes

    def own(self, t, keys):
        return [k for k in keys if k % self.threads == t]

    def apply(self, updates, deletes=()):
        with self.lock:
            self.ref.update(updates)
            for k in deletes:
                self.ref.pop(k, None)

    def snapshot(self):
        with self.lock:
            return dict(self.ref)


def stress_worker(idx, model, t, seconds_done, barrier, counts, state):
    """One of the stress threads: random ops on its own keys, reads and scans anywhere."""
    rng = np.random.default_rng(t)
    span, threads = model.span, model.threads
    mine = {k: v for k, v in model.snapshot().items() if k % threads == t}
    gen = 0

    def own_keys(n):
        return (rng.integers(0, span // threads, n) * threads + t).tolist()

    def check_scan(ks, vs, lo, hi_excl):
        arr = np.asarray(ks, dtype=np.uint64)
        assert (np.diff(arr.astype(np.int64)) > 0).all(), "scan not ascending"
        assert arr.size == 0 or (arr[0] >= lo and arr[-1] < hi_excl)
        generation_of(arr, vs)
        got = {k: v for k, v in zip(arr.tolist(), np.asarray(vs).tolist()) if k % threads == t}
        first = lo + (t - lo) % threads  # the smallest own key >= lo
        want = {k: mine[k] for k in range(first, min(hi_excl, span), threads) if k in mine}
        assert got == want, f"thread {t}: scan of [{lo}, {hi_excl}) differs on its own keys"

    def step():
        nonlocal gen
        gen += 1
        op = rng.random()
        if op < 0.25:  # batch reads anywhere, exact on own keys
            ks = np.concatenate([rng.integers(0, span, 256), own_keys(64)]).astype(np.uint64)
            values, found = idx.get_many(ks)
            own = ks % np.uint64(threads) == t
            generation_of(ks[found & ~own], values[found & ~own])
            for k, v, f in zip(ks[own].tolist(), values[own].tolist(), found[own].tolist()):
                assert (k in mine) == f and (not f or mine[k] == v), f"thread {t}: get_many of own key {k}"
        elif op < 0.45:  # upserts and inserts
            ks = own_keys(rng.integers(1, 200))
            vs = value(ks, gen)
            if rng.random() < 0.5:
                idx.put_many(np.array(ks, dtype=np.uint64), vs)
                new = dict(zip(ks, vs.tolist()))
            else:
                won = idx.insert_many(np.array(ks, dtype=np.uint64), vs)
                new = {}
                for k, v, w in zip(ks, vs.tolist(), won.tolist()):
                    assert w == (k not in mine and k not in new), f"thread {t}: insert_many of {k}"
                    if w:
                        new[k] = v
            mine.update(new)
            model.apply(new)
        elif op < 0.6:  # deletes
            ks = own_keys(rng.integers(1, 150))
            if rng.random() < 0.8:
                gone = idx.delete_many(np.array(ks, dtype=np.uint64)).tolist()
            else:
                gone = [idx.delete(k) for k in ks]
            seen = set()
            for k, g in zip(ks, gone):
                assert g == (k in mine and k not in seen), f"thread {t}: delete of {k}"
                seen.add(k)
            for k in seen:
                mine.pop(k, None)
            model.apply({}, seen)
        elif op < 0.7:  # point ops
            k = own_keys(1)[0]
            assert idx.get(k) == mine.get(k)
            v = int(value([k], gen)[0])
            idx[k] = v
            mine[k] = v
            model.apply({k: v})
        elif op < 0.85:  # range
            lo = int(rng.integers(span))
            hi = lo + int(rng.choice([10, 1000, 5000]))
            ks, vs = idx.range(lo, hi)
            check_scan(ks, vs, lo, hi)
        elif op < 0.97:  # scan; its end is where its own-key check stops
            lo = int(rng.integers(span))
            ks, vs = idx.scan(lo, int(rng.choice([1, 100, 2000])))
            if len(ks):
                check_scan(ks, vs, lo, int(ks[-1]) + 1)
        else:
            n = len(idx)
            assert len(mine) <= n <= span

    while True:
        for _ in range(250):
            step()
            counts[t] += 1
        barrier.wait()  # quiescent point: thread 0 checks everything, decides to go on
        if t == 0:
            check_whole(idx, model.snapshot())
            state["quiescent"] += 1
            state["go"] = not seconds_done()
        barrier.wait()
        if not state["go"]:
            return


def check_whole(idx, ref):
    """The index equals the reference: size, a full scan and a batch get."""
    assert len(idx) == len(ref)
    keys = np.array(sorted(ref), dtype=np.uint64)
    ks, vs = idx.range(0, 2**64 - 1)
    assert (ks == keys).all() and vs.tolist() == [ref[k] for k in keys.tolist()]
    values, found = idx.get_many(keys)
    assert found.all() and values.tolist() == vs.tolist()


def test_stress_four_threads_mixed_ops():
    """4 threads: reads, inserts, deletes, ranges and scans on one index, 0 errors."""
    threads, span = 4, 40_000
    rng = np.random.default_rng(0)
    initial = np.unique(rng.integers(0, span, span // 2).astype(np.uint64))
    idx = nfl.Index.bulk_load(initial, value(initial, 0), flow="off")
    model = Partitioned(threads, span)
    model.apply(dict(zip(initial.tolist(), value(initial, 0).tolist())))
    deadline = time.monotonic() + STRESS_SECONDS
    barrier = threading.Barrier(threads, timeout=300)
    counts, state = [0] * threads, {"quiescent": 0, "go": True}

    def worker(t):
        def run(stop):
            try:
                stress_worker(idx, model, t, lambda: time.monotonic() > deadline or stop.is_set(),
                              barrier, counts, state)
            except BaseException:
                barrier.abort()
                raise

        return run

    start = time.monotonic()
    run_threads([worker(t) for t in range(threads)])
    elapsed = time.monotonic() - start
    check_whole(idx, model.snapshot())
    print(f"\nstress: {threads} threads, {elapsed:.1f} s, {sum(counts):,} ops "
          f"({sum(counts) / elapsed:,.0f}/s), {state['quiescent']} quiescent checks, "
          f"{len(idx):,} keys at the end, 0 errors")


# ---- the lock itself --------------------------------------------------------------------


def test_writer_is_not_starved_by_readers():
    """A put waits for a few reader batches at most, not for the readers to stop."""
    keys = np.random.default_rng(0).permutation(1_000_000).astype(np.uint64) * np.uint64(7)
    idx = nfl.Index.bulk_load(keys, flow="off")
    batch = keys[:200_000]
    start = time.perf_counter()
    idx.get_many(batch)
    one = time.perf_counter() - start
    latency = []

    def reader(stop):
        while not stop.is_set():
            idx.get_many(batch)

    def writer(stop):
        time.sleep(0.2)
        for i in range(5):
            t0 = time.perf_counter()
            idx[10**12 + i] = 1
            latency.append(time.perf_counter() - t0)
            time.sleep(0.02)
        stop.set()

    run_threads([reader, reader, writer])
    median = sorted(latency)[len(latency) // 2]
    assert median < 10 * one + 0.05, (f"median put latency {median * 1e3:.0f} ms while "
                                      f"reader batches take {one * 1e3:.0f} ms")


def test_c_core_under_thread_sanitizer(tmp_path):
    """native/fuzz/race_core.c: 2 readers, 2 writers, no data race, every promise kept."""
    cc = native_build.compiler("clang", "gcc")
    if cc is None:
        pytest.skip("no C compiler for the ThreadSanitizer build")
    exe = native_build.build(native_build.FUZZ / "race_core.c", tmp_path / "race_core",
                             ["-fsanitize=thread"], cc=cc)
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1:exitcode=66")
    done = subprocess.run([str(exe), "3"], capture_output=True, text=True, timeout=120, env=env)
    assert "ThreadSanitizer" not in done.stderr, done.stderr[-4000:]
    assert done.returncode == 0 and " ok" in done.stdout, done.stdout + done.stderr[-4000:]
