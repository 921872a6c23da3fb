"""Durable indexes: writes survive reopening, checkpoints, torn tails, damage, locking."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nfl
from nfl import storage
from nfl.storage import LockedError, SnapshotError, SnapshotNotFoundError, WalError, durable, wal

KEY_DTYPES = ("uint64", "int64", "float64")
WAL_PREFIX = 16


def keys_of(dtype, rng, n):
    if dtype == "float64":
        return rng.integers(-200, 200, n) / 4.0
    return rng.integers(0, 400, n).astype(dtype)


def random_writes(db, model, rng, dtype, calls):
    """Random write calls on db, mirrored on a plain Index model (return values must agree)."""
    for _ in range(calls):
        op = rng.integers(7)
        keys = keys_of(dtype, rng, int(rng.integers(1, 20)))
        values = rng.integers(-(2**62), 2**62, keys.size)
        if op == 0:
            db.put_many(keys, values), model.put_many(keys, values)
        elif op == 1:
            assert np.array_equal(db.insert_many(keys, values), model.insert_many(keys, values))
        elif op == 2:
            assert np.array_equal(db.delete_many(keys), model.delete_many(keys))
        else:
            k, v = keys[0].item(), int(values[0])
            name = ("__setitem__", "insert", "replace", "delete")[op - 3]
            args = (k,) if name == "delete" else (k, v)
            model_name = "replace" if name == "update" else name  # Index.update(key, value) is replace now
            assert getattr(db, name)(*args) == getattr(model, model_name)(*args)


def contents(idx):
    return list(idx.items())


@pytest.mark.parametrize("key_dtype", KEY_DTYPES)
def test_writes_survive_reopen(tmp_path, key_dtype):
    rng = np.random.default_rng(0)
    model = nfl.Index(key_dtype)
    with nfl.open(tmp_path / "db", key_dtype=key_dtype) as db:
        random_writes(db, model, rng, key_dtype, 60)
        assert contents(db) == contents(model)
    with nfl.open(tmp_path / "db", key_dtype=key_dtype) as db:
        assert contents(db) == contents(model) and db.key_dtype == key_dtype
        random_writes(db, model, rng, key_dtype, 30)
    with durable.open_durable(tmp_path / "db") as db:  # dtypes from the store
        assert contents(db) == contents(model)


def test_reads_are_those_of_index(tmp_path):
    with nfl.open(tmp_path / "db", value_dtype="uint64") as db:
        db.put_many(np.arange(0, 100, 2, dtype=np.uint64), np.arange(50, dtype=np.uint64))
        assert db[4] == 2 and db.get(5) is None and 6 in db and len(db) == 50
        assert db.range(10, 16)[0].tolist() == [10, 12, 14] and db.scan(95, 5)[0].tolist() == [96, 98]
        assert db.lower_bound(41) == 42 and (db.min_key(), db.max_key()) == (0, 98)
        assert db.get_many([2, 3])[1].tolist() == [True, False] and db.contains_many([3, 4]).tolist() == [False, True]
        assert list(db)[:2] == [0, 2] and list(db.values())[:2] == [0, 1] and db.value_dtype == "uint64"
        assert db.stats()["size"] == 50 and db.memory_usage() > 0 and db.flow is None
        db.save(tmp_path / "copy.nfl")
        assert contents(nfl.Index.load(tmp_path / "copy.nfl")) == contents(db)
        with pytest.raises(KeyError):
            db[1]
        with pytest.raises(KeyError):
            del db[1]
        assert "50 keys" in repr(db)


def test_checkpoint_empties_the_log(tmp_path):
    rng = np.random.default_rng(1)
    model = nfl.Index()
    log, snap = tmp_path / "db" / "wal", tmp_path / "db" / "snapshot"
    with nfl.open(tmp_path / "db") as db:
        random_writes(db, model, rng, "uint64", 20)
        seq = len(wal.read(log)[0])
        db.checkpoint()
        assert os.path.getsize(log) == WAL_PREFIX and storage.read_header(snap)["wal_seq"] == seq
        random_writes(db, model, rng, "uint64", 5)
    with nfl.open(tmp_path / "db") as db:
        assert contents(db) == contents(model)
        random_writes(db, model, rng, "uint64", 5)
        seq += len(wal.read(log)[0])
        db.checkpoint()
    assert storage.read_header(snap)["wal_seq"] == seq
    assert contents(nfl.Index.load(tmp_path / "db" / "snapshot")) == contents(model)


def test_crash_between_snapshot_and_log_truncation(tmp_path):
    """The new snapshot landed but the log was not emptied: its records are skipped, not applied twice."""
    rng = np.random.default_rng(2)
    model = nfl.Index()
    log = tmp_path / "db" / "wal"
    with nfl.open(tmp_path / "db") as db:
        random_writes(db, model, rng, "uint64", 40)
        old_log = log.read_bytes()
        db.checkpoint()
    log.write_bytes(old_log)
    with nfl.open(tmp_path / "db") as db:
        assert contents(db) == contents(model)
        assert log.stat().st_size == WAL_PREFIX  # all in the snapshot: the log starts over
    seq = storage.read_header(tmp_path / "db" / "snapshot")["wal_seq"]
    key = np.array([999], dtype=np.uint64)
    log.write_bytes(old_log + wal.encode(seq + 1, wal.UPSERT, key, key))  # and one record after it
    model[999] = 999
    for _ in range(2):
        with nfl.open(tmp_path / "db") as db:
            assert contents(db) == contents(model)
            random_writes(db, model, rng, "uint64", 5)


def test_torn_tail_is_dropped(tmp_path):
    model = nfl.Index()
    log = tmp_path / "db" / "wal"
    with nfl.open(tmp_path / "db") as db:
        random_writes(db, model, np.random.default_rng(3), "uint64", 10)
    size = log.stat().st_size
    torn = wal.encode(11, wal.UPSERT, np.arange(50, dtype=np.uint64), np.arange(50, dtype=np.uint64))
    with open(log, "ab") as f:
        f.write(torn[:len(torn) // 2])
    with nfl.open(tmp_path / "db") as db:
        assert contents(db) == contents(model)
        assert log.stat().st_size == size
        db[1234] = 5
    with nfl.open(tmp_path / "db") as db:
        assert db[1234] == 5


def test_damage_before_the_tail_is_an_error(tmp_path):
    with nfl.open(tmp_path / "db") as db:
        for i in range(3):
            db.put_many([i, i + 10], [1, 2])
    data = bytearray((tmp_path / "db" / "wal").read_bytes())
    data[WAL_PREFIX + 30] ^= 1
    (tmp_path / "db" / "wal").write_bytes(bytes(data))
    for _ in range(2):  # the failed open released the lock: the second fails the same way
        with pytest.raises(WalError, match="followed by valid records"):
            nfl.open(tmp_path / "db")


def test_damage_in_the_last_two_records_is_an_error(tmp_path):
    """The second-to-last record's header says where it ends and the log goes on: not a torn tail,
    even when the record after it is damaged too (found by test_flipped_log_bytes)."""
    with nfl.open(tmp_path / "db") as db:
        for i in range(3):
            db.put_many([i, i + 10], [1, 2])
    data = bytearray((tmp_path / "db" / "wal").read_bytes())
    record = (len(data) - WAL_PREFIX) // 3
    data[WAL_PREFIX + record] ^= 1  # the CRC of the second record
    data[WAL_PREFIX + 2 * record] ^= 1  # and of the third
    (tmp_path / "db" / "wal").write_bytes(bytes(data))
    with pytest.raises(WalError, match="the log goes on after it"):
        nfl.open(tmp_path / "db")


def test_missing_records_are_an_error(tmp_path):
    with nfl.open(tmp_path / "db") as db:
        pass
    keys = np.arange(3, dtype=np.uint64)
    with open(tmp_path / "db" / "wal", "ab") as f:
        f.write(wal.encode(3, wal.UPSERT, keys, keys) + wal.encode(4, wal.DELETE, keys, None))
    with pytest.raises(WalError, match="records 1..2 are missing"):
        nfl.open(tmp_path / "db")


def test_bad_log_prefix(tmp_path):
    with nfl.open(tmp_path / "db"):
        pass
    (tmp_path / "db" / "wal").write_bytes(b"NFLWAL\0\0" + bytes([2, 0, 0, 0]) + bytes(4))
    with pytest.raises(WalError, match="version 2"):
        nfl.open(tmp_path / "db")
    (tmp_path / "db" / "wal").write_bytes(b"junk")
    with pytest.raises(WalError, match="not an nfl write-ahead log"):
        nfl.open(tmp_path / "db")


def test_log_without_snapshot(tmp_path):
    with nfl.open(tmp_path / "db") as db:
        db[1] = 1
    os.unlink(tmp_path / "db" / "snapshot")
    with pytest.raises(SnapshotNotFoundError):
        nfl.open(tmp_path / "db")


def test_damaged_snapshot(tmp_path):
    with nfl.open(tmp_path / "db") as db:
        db[1] = 1
        db.checkpoint()
    snap = tmp_path / "db" / "snapshot"
    snap.write_bytes(snap.read_bytes()[:-1])
    with pytest.raises(SnapshotError, match="truncated"):
        nfl.open(tmp_path / "db")


def test_dtype_mismatch(tmp_path):
    nfl.open(tmp_path / "db", key_dtype="float64").close()
    with pytest.raises(SnapshotError, match="holds float64 keys; opened with key_dtype='int64'"):
        nfl.open(tmp_path / "db", key_dtype="int64")
    with pytest.raises(SnapshotError, match="holds int64 values"):
        nfl.open(tmp_path / "db", key_dtype="float64", value_dtype="uint64")
    with pytest.raises(TypeError):
        nfl.open(tmp_path / "db", key_dtype="float32")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="sync must be"):
        nfl.open(tmp_path / "db", sync="sometimes")
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        nfl.open(tmp_path / "file")


def test_exclusive_lock(tmp_path):
    db = nfl.open(tmp_path / "db")
    with pytest.raises(LockedError, match="already open"):
        nfl.open(tmp_path / "db")
    code = "import nfl, sys\ntry:\n nfl.open(sys.argv[1])\nexcept nfl.storage.LockedError:\n sys.exit(7)"
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path / "db")]).returncode == 7
    assert isinstance(LockedError("x"), OSError)
    db.close()
    nfl.open(tmp_path / "db").close()


def test_use_after_close(tmp_path):
    with nfl.open(tmp_path / "db") as db:
        db[1] = 1
    assert db.closed and "closed" in repr(db)
    for call in (lambda: db[1], lambda: db.put_many([1], [1]), lambda: len(db), db.checkpoint,
                 lambda: db.key_dtype, lambda: db.__enter__()):
        with pytest.raises(ValueError, match="closed"):
            call()
    db.close()  # idempotent


def test_invalid_writes_are_not_logged(tmp_path):
    log = tmp_path / "db" / "wal"
    with nfl.open(tmp_path / "db") as db:
        db[1] = 1
        size = log.stat().st_size
        for bad in (lambda: db.__setitem__(-1, 1), lambda: db.put_many([1, 2], [1]),
                    lambda: db.insert_many([2.5], [1]), lambda: db.delete_many(["a"]),
                    lambda: db.__setitem__(2, 2**64)):
            with pytest.raises((ValueError, TypeError)):
                bad()
        assert db.replace(99, 1) is False and db.put_many([], []) is None
        assert log.stat().st_size == size and contents(db) == [(1, 1)]


def test_failed_append_changes_nothing(tmp_path, monkeypatch):
    log = tmp_path / "db" / "wal"
    with nfl.open(tmp_path / "db") as db:
        db[1] = 1
        size = log.stat().st_size

        def full(fd):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(wal, "_datasync", full)
        with pytest.raises(OSError):
            db.put_many([2, 3], [2, 3])
        monkeypatch.undo()
        assert log.stat().st_size == size and 2 not in db
        db[4] = 4
    with nfl.open(tmp_path / "db") as db:
        assert contents(db) == [(1, 1), (4, 4)]


def test_sync_none(tmp_path):
    with nfl.open(tmp_path / "db", sync="none") as db:
        db.put_many(np.arange(100), np.arange(100))
    with nfl.open(tmp_path / "db", sync="none") as db:
        assert len(db) == 100


def test_concurrent_writers_log_in_apply_order(tmp_path):
    with nfl.open(tmp_path / "db", sync="none") as db:
        def work(seed):
            rng = np.random.default_rng(seed)
            for _ in range(50):
                keys = rng.integers(0, 64, 8)
                if rng.random() < 0.3:
                    db.delete_many(keys)
                else:
                    db.put_many(keys, rng.integers(0, 1000, 8))

        threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        before = contents(db)
    with nfl.open(tmp_path / "db") as db:
        assert contents(db) == before


# ---- fuzzing the log --------------------------------------------------------------------


@pytest.fixture(scope="module")
def logged_store(tmp_path_factory):
    """A store whose log holds 8 records, the states after each, and where each record ends."""
    path = tmp_path_factory.mktemp("fuzz") / "db"
    rng = np.random.default_rng(4)
    model = nfl.Index("int64")
    states = [contents(model)]
    with nfl.open(path, key_dtype="int64") as db:
        for i in range(8):
            keys = rng.integers(-50, 50, int(rng.integers(1, 12)))
            values = rng.integers(-(2**62), 2**62, keys.size)
            for target in (db, model):
                if i % 3 == 2:
                    target.delete_many(keys)
                else:
                    target.put_many(keys, values)
            states.append(contents(model))
    records, end = wal.read(path / "wal")
    ends = [WAL_PREFIX + sum(24 + 8 * r.keys.size * (1 if r.values is None else 2) for r in records[:i + 1])
            for i in range(len(records))]
    assert len(records) == 8 and ends[-1] == end
    return path, states, ends


def reopen_damaged(store, data: bytes):
    """The contents after opening a copy of the store whose log is data, or the WalError."""
    path, _, _ = store
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(path, tmp + "/db")
        with open(tmp + "/db/wal", "wb") as f:
            f.write(data)
        try:
            with durable.open_durable(tmp + "/db") as db:
                return contents(db)
        except WalError as exc:
            return exc


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.data())
def test_flipped_log_bytes(logged_store, data):
    """Damage in the last record drops it (a torn tail).  Damage before it is a WalError whenever a
    later record is intact; when every later record is damaged too, the log may instead recover to
    the records before the damage (point in time) -- never to a state with a damaged record in it."""
    path, states, ends = logged_store
    raw = bytearray((path / "wal").read_bytes())
    spots = data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=3, unique=True))
    for at in spots:
        raw[at] ^= data.draw(st.integers(1, 255))
    result = reopen_damaged(logged_store, bytes(raw))
    starts = [WAL_PREFIX, *ends[:-1]]
    damaged = [any(s <= at < e for at in spots) for s, e in zip(starts, ends)]
    if min(spots) < WAL_PREFIX:
        assert isinstance(result, WalError)
    elif damaged.index(True) == len(ends) - 1:
        assert result == states[-2]
    elif not all(damaged[damaged.index(True):]):
        assert isinstance(result, WalError)
    else:
        assert isinstance(result, WalError) or result == states[damaged.index(True)]


@FUZZ
@given(st.data())
def test_truncated_log(logged_store, data):
    """A log cut anywhere after its prefix gives the state after the records wholly kept."""
    path, states, ends = logged_store
    raw = (path / "wal").read_bytes()
    cut = data.draw(st.integers(0, len(raw) - 1))
    result = reopen_damaged(logged_store, raw[:cut])
    if cut < WAL_PREFIX:
        assert isinstance(result, WalError)
    else:
        assert result == states[sum(e <= cut for e in ends)]


def test_record_no_write_could_log(tmp_path):
    """A NaN key in a record with a valid CRC (a writer bug) is refused, not applied."""
    nfl.open(tmp_path / "db", key_dtype="float64").close()
    nan = np.array([np.nan]).view(np.uint64)
    with open(tmp_path / "db" / "wal", "ab") as f:
        f.write(wal.encode(1, wal.UPSERT, nan, np.zeros(1, dtype=np.uint64)))
    with pytest.raises(WalError, match="record 1 refused"):
        nfl.open(tmp_path / "db", key_dtype="float64")


def test_opening_removes_temporaries_of_a_killed_checkpoint(tmp_path):
    with nfl.open(tmp_path / "db") as db:
        db[1] = 1
    (tmp_path / "db" / "snapshot.tmp-123-abcd").write_bytes(b"half a snapshot")
    (tmp_path / "db" / "other.tmp-1-x").write_bytes(b"not ours")
    with nfl.open(tmp_path / "db") as db:
        assert db[1] == 1
    assert sorted(os.listdir(tmp_path / "db")) == ["LOCK", "other.tmp-1-x", "snapshot", "wal"]
