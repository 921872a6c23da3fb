"""nfl.cluster on a local Ray cluster (ray.init(num_cpus=2), one per session).

Checked against sortedcontainers.SortedDict (random op sequences through
splits and merges) and against nfl.Index (batch routing: order and
duplicate-key semantics); a durable shard killed during writes keeps every
acknowledged write.
"""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from sortedcontainers import SortedDict

import nfl

ray = pytest.importorskip("ray")

from nfl.cluster import ShardedIndex, ShardUnavailableError, sharded  # noqa: E402
from nfl.cluster.routing import Table, quantile_bounds  # noqa: E402


@pytest.fixture(scope="session")
def cluster():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


_made = iter(range(10**6))


def _load(keys, values=None, **kw):
    """A fresh sharded index under a name of its own; destroyed by the caller."""
    return ShardedIndex.bulk_load(keys, values, name=f"t{next(_made)}", namespace="nfl-tests", flow="off", **kw)


def _router(sidx):
    return sidx._router


def _same(sidx, model):
    keys = np.array(list(model.keys()), dtype=np.uint64)
    assert len(sidx) == len(model)
    ks, vs = sidx.range(0, 2**64)
    assert ks.tolist() == list(model.keys()) and vs.tolist() == list(model.values())
    if keys.size:
        values, found = sidx.get_many(keys)
        assert found.all() and values.tolist() == list(model.values())


# ---- routing table (no Ray) ---------------------------------------------------------------


def test_partition_keeps_caller_order_per_shard():
    rng = np.random.default_rng(3)
    t = Table(1, ("a", "b", "c", "d"), (1, 1, 1, 1), np.array([10, 20, 30], dtype=np.uint64))
    keys = rng.integers(0, 40, 1000).astype(np.uint64)
    parts = t.partition(keys)
    seen = np.concatenate([pos for _, pos in parts])
    assert sorted(seen.tolist()) == list(range(keys.size))
    for i, pos in parts:
        assert (np.diff(pos) > 0).all()  # the caller's order within a shard
        assert all(t.shard_of(int(k)) == i for k in keys[pos])
    assert t.partition(keys[:0]) == []


def test_quantile_bounds_balance_entry_counts():
    keys = np.random.default_rng(4).lognormal(0, 2, 10_001)
    bounds = quantile_bounds(keys, 4)
    counts = np.bincount(np.searchsorted(bounds, keys, side="right"), minlength=4)
    assert counts.max() - counts.min() <= 1


def test_import_nfl_never_imports_ray():
    code = "import sys, nfl; nfl.Index.bulk_load; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})


# ---- against SortedDict, through splits and merges --------------------------------------------


def _random_ops(sidx, model, rng, steps):
    """Random single, batch and ordered ops on both; skewed bursts and deletions force splits and merges."""
    top = 1 << 20
    for step in range(steps):
        op = rng.integers(13)
        k = int(rng.integers(top))
        if op == 0:
            assert sidx.get(k) == model.get(k)
        elif op == 1:
            sidx[k] = step
            model[k] = step
        elif op == 2:
            assert sidx.insert(k, step) == (k not in model)
            model.setdefault(k, step)
        elif op == 3:
            assert sidx.delete(k) == (model.pop(k, None) is not None)
        elif op == 4:
            ks = rng.integers(top, size=50).astype(np.uint64)
            ks[::7] = ks[0]  # duplicates in the batch
            vs = rng.integers(1 << 40, size=ks.size)
            sidx.put_many(ks, vs)
            model.update(zip(ks.tolist(), vs.tolist()))  # last wins
        elif op == 5:
            ks = rng.integers(top, size=40).astype(np.uint64)
            values, found = sidx.get_many(ks)
            assert found.tolist() == [int(x) in model for x in ks]
            assert values[found].tolist() == [model[int(x)] for x in ks[found]]
        elif op == 6:
            ks = rng.integers(top, size=40).astype(np.uint64)
            deleted = sidx.delete_many(ks)
            expect = []
            for x in ks.tolist():
                expect.append(model.pop(x, None) is not None)
            assert deleted.tolist() == expect
        elif op == 7:
            lo = int(rng.integers(top))
            hi = lo + int(rng.integers(top // 4))
            ks, vs = sidx.range(lo, hi)
            assert ks.tolist() == list(model.irange(lo, hi, inclusive=(True, False)))
        elif op == 8:
            n = int(rng.integers(1, 300))
            ks, vs = sidx.scan(k, n)
            expect = list(model.irange(minimum=k))[:n]
            assert ks.tolist() == expect and vs.tolist() == [model[x] for x in expect]
        elif op == 9:
            burst = rng.integers(top - 4096, top, size=300).astype(np.uint64)  # skewed: the top shard grows
            sidx.insert_many(burst, np.full(burst.size, step))
            for x in burst.tolist():
                model.setdefault(x, step)
        elif op == 10:
            lo = int(rng.integers(top // 2))
            doomed = np.array(list(model.irange(lo, lo + top // 8)), dtype=np.uint64)
            sidx.delete_many(doomed)  # a quiet range: its shard shrinks, a merge follows
            for x in doomed.tolist():
                del model[x]
        elif op == 11:
            lo, hi = sorted(int(x) for x in rng.integers(top, size=2))
            inclusive = tuple(bool(b) for b in rng.integers(2, size=2))
            for lo_, hi_ in ((lo, hi), (None, lo), (hi, None)):
                for reverse in (False, True):
                    assert list(sidx.irange(lo_, hi_, inclusive, reverse)) == list(
                        model.irange(lo_, hi_, inclusive, reverse))
        else:
            assert sidx.lower_bound(k) == next(iter(model.irange(minimum=k)), None)
            assert sidx.min_key() == (model.keys()[0] if model else None)
            assert sidx.max_key() == (model.keys()[-1] if model else None)
            assert len(sidx) == len(model)


def test_differential_against_sorteddict_with_splits_and_merges(cluster, monkeypatch):
    monkeypatch.setattr(sharded, "_CHUNK", 64)  # irange crosses many chunk boundaries
    rng = np.random.default_rng(7)
    keys = rng.choice(1 << 20, 3000, replace=False).astype(np.uint64)
    model = SortedDict(zip(keys.tolist(), range(keys.size)))
    sidx = _load(keys, shards=4)
    try:
        router = _router(sidx)
        ray.get(router.split.remote(1))
        assert sidx.stats()["shard_count"] == 5
        _same(sidx, model)
        ray.get([router.merge.remote(2), router.merge.remote(0)])
        assert sidx.stats()["shard_count"] == 3
        _same(sidx, model)
        ks, _ = sidx.scan(1, keys.size)  # crosses every boundary
        assert ks.tolist() == list(model.irange(minimum=1))
        versions = set()
        for _ in range(6):
            _random_ops(sidx, model, rng, 60)
            sidx.rebalance()
            versions.add(sidx.stats()["table_version"])
            _same(sidx, model)
        st = sidx.stats()
        assert len(versions) > 1, "no split or merge happened"
        assert st["size"] == len(model) == sum(s["size"] for s in st["shards"])
        sizes = [s["size"] for s in st["shards"]]
        mean = sum(sizes) / len(sizes)
        assert max(sizes) <= 2 * mean
    finally:
        sidx.destroy()


# ---- batch routing: nfl.Index's semantics --------------------------------------------------


def test_every_batch_op_keeps_order_and_duplicate_semantics(cluster):
    rng = np.random.default_rng(11)
    keys = rng.choice(1 << 30, 4000, replace=False).astype(np.uint64)
    ref = nfl.Index.bulk_load(keys, flow="off")
    sidx = _load(keys, shards=3)
    try:
        batch = np.concatenate([rng.choice(keys, 500), rng.integers(1 << 30, size=500).astype(np.uint64)])
        batch = np.concatenate([batch, batch[::-3]])  # duplicates, out of order
        rng.shuffle(batch)
        values = rng.integers(1 << 50, size=batch.size)
        for name, args in (("contains_many", (batch,)), ("get_many", (batch,)), ("insert_many", (batch, values)),
                           ("get_many", (batch,)), ("put_many", (batch, values[::-1].copy())),
                           ("get_many", (batch,)), ("delete_many", (batch,)), ("contains_many", (batch,))):
            want, got = getattr(ref, name)(*args), getattr(sidx, name)(*args)
            if name == "get_many":
                np.testing.assert_array_equal(got[1], want[1])
                np.testing.assert_array_equal(got[0][want[1]], want[0][want[1]])
            elif want is None:
                assert got is None
            else:
                np.testing.assert_array_equal(got, want)
        assert len(sidx) == len(ref)
        assert sidx.get_many(np.empty(0, np.uint64))[0].size == 0
        with pytest.raises(ValueError):
            sidx.get_many(np.array([-1]))
        with pytest.raises(ValueError):
            sidx.put_many(keys[:2], keys[:3])
        with pytest.raises(KeyError):
            sidx[int(1 << 31)]
        other = ShardedIndex.connect(sidx.name, "nfl-tests")  # a second client, by name
        other[1 << 31] = 1
        assert sidx[1 << 31] == 1 and len(other) == len(ref) + 1
        with pytest.raises(ValueError):
            ShardedIndex.connect("no-such-index", "nfl-tests")
    finally:
        sidx.destroy()


def test_signed_and_float_keys_route_by_value(cluster):
    keys = np.linspace(-1e6, 1e6, 999)
    sidx = _load(keys, shards=2)
    try:
        ks, vs = sidx.range(-10.5, 1e7)
        assert ks.tolist() == keys[keys >= -10.5].tolist()
        assert sidx.get(keys[0]) == 0 and sidx.min_key() == -1e6
        sidx[-2e6] = 5
        assert sidx.scan(-3e6, 2)[0].tolist() == [-2e6, -1e6]
    finally:
        sidx.destroy()


# ---- online balance: reads and writes during splits and merges --------------------------------


def test_reads_and_writes_continue_through_splits_and_merges(cluster):
    base = np.arange(0, 20_000, 4, dtype=np.uint64)  # present throughout
    sidx = _load(base, shards=4, balance=False)
    errors, acked = [], []
    stop = threading.Event()

    def writer():
        client = ShardedIndex.connect(sidx.name, "nfl-tests", balance=False)
        k = 1
        while not stop.is_set():
            batch = np.arange(k, k + 64 * 4, 4, dtype=np.uint64)  # fresh keys, never in base
            inserted = client.insert_many(batch, batch.astype(np.int64))
            if not inserted.all():
                errors.append(f"insert applied twice (or lost) near {k}")
            acked.append(batch)
            k += 64 * 4

    def reader():
        client = ShardedIndex.connect(sidx.name, "nfl-tests", balance=False)
        while not stop.is_set():
            values, found = client.get_many(base)
            if not found.all() or (values != np.arange(base.size)).any():
                errors.append("a read missed a key present throughout")

    threads = [threading.Thread(target=f) for f in (writer, reader)]
    for th in threads:
        th.start()
    try:
        router = _router(sidx)
        for i in (0, 3):
            ray.get(router.split.remote(i))
        for i in (3, 0, 1):
            ray.get(router.merge.remote(i))
    finally:
        stop.set()
        for th in threads:
            th.join()
    try:
        assert not errors, errors[:3]
        written = np.concatenate(acked)
        values, found = sidx.get_many(written)
        assert found.all() and (values == written.astype(np.int64)).all()
        assert len(sidx) == base.size + written.size
    finally:
        sidx.destroy()


@pytest.mark.slow
def test_skewed_inserts_trigger_a_split(cluster):
    keys = np.arange(0, 8000, dtype=np.uint64)
    sidx = _load(keys, shards=4)
    try:
        hot = np.arange(10**6, 10**6 + 20_000, dtype=np.uint64)
        for part in np.array_split(hot, 10):
            sidx.insert_many(part, part.astype(np.int64))
        sidx.rebalance()
        sizes = [s["size"] for s in sidx.stats()["shards"]]
        assert len(sizes) > 4 and max(sizes) <= 2 * sum(sizes) / len(sizes)
        assert sidx.contains_many(hot).all()
    finally:
        sidx.destroy()


# ---- faults ---------------------------------------------------------------------------------


def test_killed_durable_shard_restarts_with_every_acknowledged_write(cluster, tmp_path):
    keys = np.arange(10**6, 10**6 + 2000, 2, dtype=np.uint64)
    sidx = _load(keys, shards=2, path=str(tmp_path))
    try:
        victim = sidx.shard_info()[1]["pid"]
        acked, failures = {}, []
        killer = threading.Timer(0.5, os.kill, (victim, signal.SIGKILL))
        killer.start()
        deadline = time.monotonic() + 60
        k, after = 0, 0  # writes acknowledged after the first failure: the shard is back
        while time.monotonic() < deadline and after < 20:
            k += 1  # every key written once: fresh batch keys on the victim, single keys on the other shard
            batch = np.arange(2 * 10**6 + 20 * k, 2 * 10**6 + 20 * (k + 1), dtype=np.uint64)
            try:
                sidx.put_many(batch, batch.astype(np.int64) * 3)
            except ShardUnavailableError as exc:
                failures.append(exc)
                time.sleep(0.2)  # Ray restarts the actor from its directory
                continue
            acked.update(zip(batch.tolist(), (batch.astype(np.int64) * 3).tolist()))
            sidx[k] = -k
            acked[k] = -k
            after += bool(failures)
        killer.join()
        assert failures, "the shard was never seen to die"
        assert "died or is restarting" in str(failures[0])
        assert sidx.shard_info()[1]["pid"] != victim
        want = np.array(sorted(acked), dtype=np.uint64)
        values, found = sidx.get_many(want)
        assert found.all(), f"{int((~found).sum())} acknowledged writes lost"
        assert values.tolist() == [acked[x] for x in want.tolist()]
        assert sidx.contains_many(keys).all()
    finally:
        sidx.destroy()
