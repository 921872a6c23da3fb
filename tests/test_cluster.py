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
from nfl.cluster.directory import ReconcileError, reconcile  # noqa: E402
from nfl.cluster.routing import Table, flow_bounds, quantile_bounds  # noqa: E402
from nfl.flow import Flow, layout  # noqa: E402


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


def _cdf_flow(keys, bins, rng):
    """A spline flow through the quantiles of a 10 % sample of keys: a flow fitted to their CDF, without torch."""
    sample = np.sort(rng.choice(keys, keys.size // 10, replace=False)).astype(np.float64)
    lo, hi = float(keys.min()), float(keys.max())
    levels = np.linspace(0, 1, bins + 1)
    knots = (np.quantile(sample, levels) - lo) / (hi - lo)
    knots[0], knots[-1] = 0.0, 1.0
    knots, first = np.unique(knots, return_index=True)
    cdf = levels[first]
    cdf[-1] = 1.0
    return Flow(layout.pack(layout.Spline("linear", 1 / (hi - lo), -lo / (hi - lo), knots, np.diff(cdf))))


def _counts(bounds, keys):
    return np.bincount(np.searchsorted(bounds, keys, side="right"), minlength=bounds.size + 1)


def test_flow_cdf_and_quantile_bounds_balance_a_skewed_key_set():
    rng = np.random.default_rng(5)
    keys = np.unique((rng.lognormal(0, 2, 200_000) * 1e9).astype(np.uint64))
    rng.shuffle(keys)
    flow = _cdf_flow(keys, 100, rng)
    for shards in (2, 4, 7):
        even = np.linspace(float(keys.min()), float(keys.max()), shards + 1)[1:-1].astype(np.uint64)
        assert _counts(even, keys).max() > 0.9 * keys.size  # the key set is skewed: equal key widths fail
        by_flow, exact = flow_bounds(keys, flow, shards), quantile_bounds(keys, shards)
        assert (np.diff(by_flow.astype(np.float64)) > 0).all() and by_flow.dtype == keys.dtype
        assert _counts(by_flow, keys).max() < 1.05 * keys.size / shards
        assert _counts(exact, keys).max() - _counts(exact, keys).min() <= 1
        z = flow.transform(keys)
        for i, b in enumerate(by_flow.tolist(), 1):  # each bound is the first key past the CDF's cut
            assert b == keys[z >= i / shards].min()
    coarse = Flow(layout.pack(layout.Spline("linear", 1e-30, 0.0, np.array([0.0, 1.0]), np.array([1.0]))))
    assert flow_bounds(keys, coarse, 4) is None  # every key in the first slice: no cut


def test_reconcile_finishes_or_undoes_a_change_of_ranges():
    a, b, c = "x/shard-0", "x/shard-1", "x/shard-2"
    assert reconcile({a: {"lo": None, "hi": 5, "epoch": 1}, b: {"lo": 5, "hi": None, "epoch": 1}, c: None}) == (
        [(a, None, 5), (b, 5, None)], [c])
    moving = {"lo": 5, "hi": 9, "epoch": 2, "moving": {"hi": None, "to": c}}
    left = {"lo": None, "hi": 5, "epoch": 1}
    # a split cut short before the new shard took its range: undone
    assert reconcile({a: left, b: moving, c: None}) == ([(a, None, 5), (b, 5, None)], [c])
    # ... after: done (the old shard keeps its lower part; restrict drops the rest)
    assert reconcile({a: left, b: moving, c: {"lo": 9, "hi": None, "epoch": 2}}) == (
        [(a, None, 5), (b, 5, 9), (c, 9, None)], [])
    into = {"lo": 5, "hi": None, "epoch": 2, "into": a}
    # a merge of b into a cut short before a took the joined range: undone; after: done
    assert reconcile({a: left, b: into}) == ([(a, None, 5), (b, 5, None)], [])
    assert reconcile({a: {"lo": None, "hi": None, "epoch": 2}, b: into}) == ([(a, None, None)], [b])
    for bad in ({a: left}, {a: left, b: {"lo": 6, "hi": None, "epoch": 1}},
                {a: left, b: {"lo": 4, "hi": None, "epoch": 1}}, {a: None},
                {a: left, b: moving, c: {"lo": 9, "hi": None, "epoch": 3}}):
        with pytest.raises(ReconcileError):
            reconcile(bad)


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


def _wait_restarted(sidx, i, old_pid, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = sidx.shard_info()[i]
            if info["pid"] != old_pid:
                return info
        except ShardUnavailableError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"shard {i} did not come back")


def test_durable_shards_cut_by_the_flow_keep_it_through_restarts_and_splits(cluster, tmp_path):
    rng = np.random.default_rng(8)
    keys = np.unique((rng.lognormal(0, 2, 40_000) * 1e9).astype(np.uint64))
    flow = _cdf_flow(keys, 64, rng)
    sidx = ShardedIndex.bulk_load(keys, shards=4, flow=flow, path=tmp_path, name=f"t{next(_made)}",
                                  namespace="nfl-tests", balance=False)
    try:
        st = sidx.stats()
        sizes = [s["size"] for s in st["shards"]]
        assert max(sizes) < 1.1 * keys.size / 4  # balanced by the flow's CDF on a skewed key set
        assert sidx._table.bounds.tolist() == flow_bounds(keys, flow, 4).tolist()
        assert all(s["flow_enabled"] for s in st["shards"])
        with pytest.raises(FileExistsError):
            ShardedIndex.bulk_load(keys, shards=2, flow="off", path=tmp_path, name="other", namespace="nfl-tests")
        victim = sidx.shard_info()[2]["pid"]
        os.kill(victim, signal.SIGKILL)
        assert _wait_restarted(sidx, 2, victim)["flow_enabled"]  # reopened from its directory, with its flow
        ray.get(_router(sidx).split.remote(2))
        assert [s["flow_enabled"] for s in sidx.stats()["shards"]] == [True] * 5  # the new shard too
        _, found = sidx.get_many(keys)
        assert found.all()
    finally:
        sidx.destroy()


def test_in_memory_shard_dying_at_a_split_puts_the_index_out_of_service(cluster):
    sidx = _load(np.arange(1000, dtype=np.uint64), shards=2, balance=False)
    try:
        os.kill(sidx.shard_info()[1]["pid"], signal.SIGKILL)
        with pytest.raises(ShardUnavailableError, match="did not come back"):
            ray.get(_router(sidx).split.remote(1))
        with pytest.raises(ShardUnavailableError, match="out of service"):
            sidx.get_many(np.arange(0, 1000, 10, dtype=np.uint64))  # the dead shard's part: no silent loss
        assert sidx.get_many(np.arange(10, dtype=np.uint64))[1].all()  # the live shard still answers
        with pytest.raises(ShardUnavailableError, match="out of service"):
            ShardedIndex.connect(sidx.name, "nfl-tests")
    finally:
        sidx.destroy()


def test_shard_dying_during_a_split_then_the_whole_cluster_reopens(cluster, tmp_path):
    keys = np.arange(0, 60_000, 2, dtype=np.uint64)
    sidx = _load(keys, shards=2, path=str(tmp_path), balance=False)
    range_file = tmp_path / "shard-1" / "range.json"
    victim = sidx.shard_info()[1]["pid"]
    acked, failures, other = {}, [], []
    stop, moving_seen = threading.Event(), threading.Event()

    def killer():  # kills the splitting shard once it has durably refused its upper half
        while not stop.is_set():
            if b"moving" in range_file.read_bytes():
                os.kill(victim, signal.SIGKILL)
                moving_seen.set()
                return
            time.sleep(0.001)

    def writer():
        client = ShardedIndex.connect(sidx.name, "nfl-tests", balance=False)
        k = 1
        while not stop.is_set():
            batch = np.arange(k, k + 2 * 64, 2, dtype=np.uint64) + 30_000  # odd keys over both halves of shard 1
            try:
                client.put_many(batch, batch.astype(np.int64) * 5)
                acked.update(dict.fromkeys(batch.tolist()))
            except ShardUnavailableError as exc:
                failures.append(exc)
            except Exception as exc:  # anything else fails the test
                other.append(exc)
                return
            k = (k + 2 * 64) % 30_000

    threads = [threading.Thread(target=f) for f in (killer, writer)]
    for th in threads:
        th.start()
    try:
        repeated = ray.get(_router(sidx).split.remote(1))
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=120)
    try:
        assert not any(th.is_alive() for th in threads), "a call hung"
        assert not other, other[:3]
        assert moving_seen.is_set() and repeated >= 1, "the shard did not die during its split"
        assert all("died or is restarting" in str(e) for e in failures)
        assert sidx.stats()["shard_count"] == 3  # refreshes this client's table
        bounds = sidx._table.bounds.tolist()
        assert len(bounds) == 2
        want = np.array(sorted(acked), dtype=np.uint64)
        values, found = sidx.get_many(want)
        assert found.all() and (values == want.astype(np.int64) * 5).all()
        size = len(sidx)
        # every actor gone at once, nothing closed: the whole cluster reopens from its directories
        for handle in [sidx._shard(n) for n in sidx._table.names] + [_router(sidx)]:
            ray.kill(handle, no_restart=True)
        sidx = None
        again = ShardedIndex.open(tmp_path, name=f"t{next(_made)}", namespace="nfl-tests", balance=False)
        try:
            assert again._table.bounds.tolist() == bounds
            assert len(again) == size
            values, found = again.get_many(want)
            assert found.all() and (values == want.astype(np.int64) * 5).all()
            assert again.contains_many(keys).all()
            ks, _ = again.range(0, 2**64)
            assert (np.diff(ks.astype(np.float64)) > 0).all() and ks.size == size
            again[7] = 7  # writable, and split numbering goes on past the old shards
            ray.get(_router(again).split.remote(0))
            assert again[7] == 7 and (tmp_path / "shard-3").is_dir()
        finally:
            again.destroy()
    finally:
        if sidx is not None:
            sidx.destroy()
