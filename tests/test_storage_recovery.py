"""Recovery of a durable index: damage is repaired, reported and kept, or raises; never lost silently.

What durable.py documents: a torn or damaged last log record is cut off into
a wal.tail-* side file with a RecoveryWarning and reported in db.recovery
(strict=True raises WalError for a damaged one); damage anywhere else, a
missing log or snapshot, raises.  The property tests flip every bit (a
sample; all of them under -m slow) and cut every length of a small store's
snapshot and log.
"""
import os
import random
import warnings

import numpy as np
import pytest

import nfl
from nfl.storage import (ForkedError, RecoveryWarning, SnapshotError, SnapshotNotFoundError, WalError,
                         WalNotFoundError, wal)

WAL_PREFIX = 16


def contents(db):
    return list(db.items())


def two_record_store(path):
    """The issue's store: db[1] = 10, then a 1000-key batch; the log's size after each record."""
    with nfl.open(path) as db:
        db[1] = 10
        first = os.path.getsize(path / "wal")
        db.put_many(np.arange(100, 1100), np.arange(1000))
    return first, os.path.getsize(path / "wal")


def open_quietly(path, **kwargs):
    """nfl.open, and the RecoveryWarnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        db = nfl.open(path, **kwargs)
    return db, [w for w in caught if issubclass(w.category, RecoveryWarning)]


def flip(path, at, bit=0):
    data = bytearray(path.read_bytes())
    data[at] ^= 1 << bit
    path.write_bytes(bytes(data))


def test_damaged_last_record_is_set_aside_reported_and_kept(tmp_path):
    first, size = two_record_store(tmp_path / "db")
    log = tmp_path / "db" / "wal"
    flip(log, first)  # the CRC of the second record: full length, bad checksum
    damaged = log.read_bytes()
    db, warned = open_quietly(tmp_path / "db")
    with db:
        assert contents(db) == [(1, 10)]
        r = db.recovery
        assert (r.replayed, r.skipped, r.bytes_set_aside) == (1, 0, size - first)
        assert "damaged last record" in r.reason and "checksum" in r.reason
        assert len(warned) == 1 and r.side_file in str(warned[0].message)
        assert os.path.dirname(r.side_file) == str(tmp_path / "db")
        assert open(r.side_file, "rb").read() == damaged[first:]  # the evidence, byte for byte
        assert log.read_bytes() == damaged[:first]
        db[2] = 20  # the log goes on after the good records
    with nfl.open(tmp_path / "db") as db:
        assert contents(db) == [(1, 10), (2, 20)] and db.recovery.bytes_set_aside == 0


def test_strict_raises_for_a_damaged_last_record_and_changes_nothing(tmp_path):
    first, _ = two_record_store(tmp_path / "db")
    log = tmp_path / "db" / "wal"
    flip(log, first + 7, 3)
    damaged = log.read_bytes()
    with pytest.raises(WalError, match="damaged last record.*strict"):
        nfl.open(tmp_path / "db", strict=True)
    assert log.read_bytes() == damaged and sorted(os.listdir(tmp_path / "db")) == ["LOCK", "snapshot", "wal"]


def test_unknown_op_in_the_last_record_is_damage(tmp_path):
    first, _ = two_record_store(tmp_path / "db")
    flip(tmp_path / "db" / "wal", first + 4, 4)  # op 1 -> 17
    with pytest.raises(WalError, match="unknown op 17"):
        nfl.open(tmp_path / "db", strict=True)
    db, warned = open_quietly(tmp_path / "db")
    with db:
        assert len(db) == 1 and "unknown op" in db.recovery.reason and warned


def test_torn_tail_is_reported_and_kept_even_when_strict(tmp_path):
    first, size = two_record_store(tmp_path / "db")
    log = tmp_path / "db" / "wal"
    whole = log.read_bytes()
    for cut, why in ((size - 8, "of the"), (first + 20, "shorter than a record header")):
        log.write_bytes(whole[:cut])
        db, warned = open_quietly(tmp_path / "db", strict=True)  # a crash leaves this: repaired
        with db:
            assert contents(db) == [(1, 10)] and warned
            assert db.recovery.bytes_set_aside == cut - first and "torn last record" in db.recovery.reason
            assert why in db.recovery.reason
            assert open(db.recovery.side_file, "rb").read() == whole[first:cut]
    tails = sorted(name for name in os.listdir(tmp_path / "db") if name.startswith("wal.tail-"))
    assert tails == ["wal.tail-2", "wal.tail-2.1"]  # the second does not overwrite the first


def test_clean_open_reports_nothing(tmp_path):
    two_record_store(tmp_path / "db")
    db, warned = open_quietly(tmp_path / "db")
    with db:
        assert db.recovery == (2, 0, 0, None, None) and not warned
        db.checkpoint()
        db[5] = 5
    with nfl.open(tmp_path / "db") as db:
        assert db.recovery.replayed == 1 and db.recovery.skipped == 0


def test_checkpoint_cut_short_reports_skipped_records(tmp_path):
    two_record_store(tmp_path / "db")
    log = tmp_path / "db" / "wal"
    old = log.read_bytes()
    with nfl.open(tmp_path / "db") as db:
        db.checkpoint()
    log.write_bytes(old)  # the snapshot landed, the log was not emptied
    with nfl.open(tmp_path / "db") as db:
        assert db.recovery[:3] == (0, 2, 0) and len(db) == 1001
    assert log.stat().st_size == WAL_PREFIX


def test_missing_log_after_a_checkpoint_is_an_error(tmp_path):
    with nfl.open(tmp_path / "db") as db:
        db[1] = 1
        db.checkpoint()
        db[2] = 2
    os.unlink(tmp_path / "db" / "wal")
    for _ in range(2):
        with pytest.raises(WalNotFoundError, match=r"records up to 1\) but no log"):
            nfl.open(tmp_path / "db")
    assert isinstance(WalNotFoundError(2, "x"), (FileNotFoundError, WalError))
    assert sorted(os.listdir(tmp_path / "db")) == ["LOCK", "snapshot"]  # nothing made up


def test_missing_log_of_a_new_store_is_an_error(tmp_path):
    nfl.open(tmp_path / "db").close()  # the log is created first: a snapshot means it existed
    os.unlink(tmp_path / "db" / "wal")
    with pytest.raises(WalNotFoundError):
        nfl.open(tmp_path / "db")


def test_creation_cut_short_after_the_log(tmp_path):
    """A kill between creating the log and the snapshot: the next open completes the creation."""
    (tmp_path / "db").mkdir()
    wal.create(tmp_path / "db" / "wal")
    with nfl.open(tmp_path / "db", key_dtype="int64") as db:
        assert "creation cut short" in db.recovery.reason and db.key_dtype == "int64"
        db[-1] = 1
    with nfl.open(tmp_path / "db") as db:
        assert contents(db) == [(-1, 1)] and db.recovery.reason is None


def test_a_log_with_a_tail_and_no_snapshot_is_an_error(tmp_path):
    first, _ = two_record_store(tmp_path / "db")
    os.unlink(tmp_path / "db" / "snapshot")
    log = tmp_path / "db" / "wal"
    log.write_bytes(log.read_bytes()[:WAL_PREFIX + 10])  # not even one whole record
    with pytest.raises(SnapshotNotFoundError):
        nfl.open(tmp_path / "db")


def test_iterators_stop_at_close(tmp_path):
    with nfl.open(tmp_path / "db") as db:
        db.put_many(np.arange(10_000), np.arange(10_000))
        its = [iter(db), iter(db.items()), iter(db.keys()), iter(db.values()), reversed(db), db.irange(0)]
        started = iter(db.items())
        assert next(started) == (0, 0)
    for it in its + [started]:
        with pytest.raises(ValueError, match="closed"):
            next(it)
    with nfl.open(tmp_path / "db") as db:  # iterators in full still work while open
        assert sum(1 for _ in db) == 10_000 and list(db.values())[-1] == 9_999


def test_forked_child_reads_but_cannot_write(tmp_path):
    """The child sees the parent's contents; writes and checkpoints raise ForkedError; its close leaves
    the parent's store open and its log untouched."""
    db = nfl.open(tmp_path / "db")
    db.put_many(np.arange(100), np.arange(100))
    size = os.path.getsize(tmp_path / "db" / "wal")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            ok = len(db) == 100 and db[7] == 7 and list(db.keys())[:2] == [0, 1]
            for write in (lambda: db.__setitem__(1, 1), lambda: db.put_many([1], [1]), db.checkpoint,
                          lambda: db.replace(1, 2), lambda: db.update({1: 2}), lambda: db.pop(1),
                          lambda: db.delete(1)):
                try:
                    write()
                    ok = False
                except ForkedError as exc:
                    ok = ok and "forked" in str(exc)
            db.close()
            code = 0 if ok and db.closed else 1
        finally:
            os.write(w, bytes([code]))
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"\0"
    os.waitpid(pid, 0)
    assert os.path.getsize(tmp_path / "db" / "wal") == size and not db.closed
    db[1000] = 1
    db.close()
    with nfl.open(tmp_path / "db") as db:
        assert len(db) == 101 and db.recovery.bytes_set_aside == 0


# ---- every flip, every cut ----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """A store with a checkpoint (3 records in the snapshot) and 4 records in the log.

    Returns (files, states): the files' bytes, and the contents after each acknowledged write call.
    """
    path = tmp_path_factory.mktemp("recovery") / "db"
    rng = np.random.default_rng(5)
    states = [[]]
    with nfl.open(path, key_dtype="int64") as db:
        for i in range(7):
            keys = rng.integers(-20, 20, int(rng.integers(1, 5)))
            if i % 3 == 2:
                db.delete_many(keys)
            else:
                db.put_many(keys, rng.integers(-(2**62), 2**62, keys.size))
            states.append(contents(db))
            if i == 2:
                db.checkpoint()
    files = {name: (path / name).read_bytes() for name in ("snapshot", "wal")}
    assert len(wal.read(path / "wal")[0]) == 4
    return files, states


def open_damaged(directory, files, name, data):
    """Opens a store whose file name holds data (the other file as in files): checks the outcome.

    Either a documented error, or a state that is an acknowledged prefix, with any bytes cut
    off the log kept in the side file db.recovery names, and the full state when none were cut.
    """
    for entry in os.listdir(directory):
        os.unlink(os.path.join(directory, entry))
    for other, content in files.items():
        with open(os.path.join(directory, other), "wb") as f:
            f.write(data if other == name else content)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            db = nfl.open(directory)
    except (SnapshotError, WalError) as exc:  # SnapshotNotFoundError, WalNotFoundError are among them
        return exc
    with db:
        state, recovery = contents(db), db.recovery
    log = open(os.path.join(directory, "wal"), "rb").read()
    if recovery.bytes_set_aside:
        kept = open(recovery.side_file, "rb").read()
        assert len(kept) == recovery.bytes_set_aside and recovery.reason
        assert any(issubclass(w.category, RecoveryWarning) for w in caught)
        original = data if name == "wal" else files["wal"]
        assert original.endswith(kept) and original.startswith(log if recovery.replayed else log[:WAL_PREFIX])
    else:
        assert recovery.side_file is None and not [n for n in os.listdir(directory) if n.startswith("wal.tail")]
    return state, recovery


def check_flip(directory, store, name, at, bit):
    files, states = store
    data = bytearray(files[name])
    data[at] ^= 1 << bit
    result = open_damaged(directory, files, name, bytes(data))
    if name == "snapshot":  # SHA-256 over all of it
        assert isinstance(result, SnapshotError), (at, bit, result)
        return
    if isinstance(result, Exception):
        assert isinstance(result, WalError), (at, bit, result)
        return
    state, recovery = result
    assert state in states[3:], (at, bit)
    # one flipped bit: either the last record is set aside or the log is whole
    assert state == (states[-2] if recovery.bytes_set_aside else states[-1]), (at, bit, recovery)


def check_cut(directory, store, name, cut):
    files, states = store
    result = open_damaged(directory, files, name, files[name][:cut])
    if name == "snapshot" or cut < WAL_PREFIX:
        assert isinstance(result, SnapshotError if name == "snapshot" else WalError), (name, cut, result)
        return
    state, recovery = result
    assert state == states[3 + recovery.replayed], (cut, recovery)  # the records wholly kept
    assert recovery.bytes_set_aside == cut - WAL_PREFIX - sum(
        len(wal.encode(r.seq, r.op, r.keys, r.values)) for r in wal.read(os.path.join(directory, "wal"))[0])


def every_flip(store):
    files, _ = store
    return [(name, at, bit) for name in files for at in range(len(files[name])) for bit in range(8)]


def test_every_cut_of_snapshot_and_log(tmp_path, small_store):
    files, _ = small_store
    for name in files:
        for cut in range(len(files[name])):
            check_cut(str(tmp_path), small_store, name, cut)


def test_flipped_bits_sampled(tmp_path, small_store):
    flips = every_flip(small_store)
    for name, at, bit in random.Random(0).sample(flips, 600):
        check_flip(str(tmp_path), small_store, name, at, bit)
    last = len(small_store[0]["wal"])  # and every bit of the log's last record word by word
    for at in range(last - 40, last):
        check_flip(str(tmp_path), small_store, "wal", at, at % 8)


@pytest.mark.slow
def test_every_flipped_bit(tmp_path, small_store):
    for name, at, bit in every_flip(small_store):
        check_flip(str(tmp_path), small_store, name, at, bit)
