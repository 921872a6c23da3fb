"""DurableIndex: an Index whose acknowledged writes survive a crash.

A durable index is a directory:

    LOCK       held with flock(LOCK_EX) while open: one writer process at a time
    snapshot   the index as of log record wal_seq (snapshot.py)
    wal        records after that snapshot (wal.py)
    wal.tail-S[.K]   bytes recovery cut off the log's end (S: the seq they
               would have had), kept as evidence; nfl never reads them

Every write call validates its input, appends one log record (fdatasync'd
when sync="always"), applies it to the in-memory Index and only then
returns.  checkpoint() saves a snapshot that names the last record it holds,
then empties the log; a crash between the two leaves records the snapshot
already holds, and opening skips them by their seq.  A new store writes its
log first and its snapshot second, so a snapshot without a log means the log
was lost.

What opening does with damage (DurableIndex.recovery says what it did):

    repaired, reported   a torn last record (the file ends before the record
                         does): cut off, kept in a wal.tail-* file, a
                         RecoveryWarning.  Safe to drop: a record is
                         acknowledged only after it is whole on disk, and a
                         crash can only tear the record being appended, so a
                         torn record's write call never returned.
                         A log with no record and no snapshot: a creation cut
                         short between the two; the snapshot is written.
    reported             a damaged last record (full length, bad CRC or op):
                         not applied, cut off and kept in a wal.tail-* file,
                         a RecoveryWarning.  It may have been acknowledged (a
                         bit flip), so with strict=True it raises WalError
                         instead and nothing is changed.
    raises               damage before the last record (WalError), records
                         missing between the snapshot and the log (WalError),
                         a missing log next to a snapshot (WalNotFoundError),
                         a missing snapshot next to a log that holds records
                         (SnapshotNotFoundError), any damage in the snapshot
                         (SnapshotError): none of these can come from a
                         crash, and going on would lose acknowledged writes.

fork(): the child of a process that holds a durable index open may read it
(the in-memory index as it was at the fork) and close it, but every write or
checkpoint raises ForkedError: the log, its end and the directory lock
belong to the parent.  A child that needs to write opens the directory after
the parent has closed it.
"""
import collections.abc
import fcntl
import os
import threading
import warnings
from typing import NamedTuple, Optional

import numpy as np

from nfl import _keys, views
from nfl.index import _MISSING, Index
from nfl.storage import snapshot, wal
from nfl.storage.errors import (ForkedError, LockedError, RecoveryWarning, SnapshotError, SnapshotNotFoundError,
                                WalError, WalNotFoundError)
from nfl.storage.files import atomic_write, fsync_dir, remove_temps
from nfl.switch import check_flow_arg, choose_flow

SYNC_MODES = ("always", "none")
_READS = ("get", "__getitem__", "__contains__", "__len__", "__eq__",
          "get_many", "contains_many", "range", "scan", "lower_bound", "ceiling_key", "floor_key",
          "lower_key", "higher_key", "min_key", "max_key", "peekitem",
          "copy", "stats", "memory_usage", "save")
# Reads whose iterators stop at close(); the views below iterate through them.
_ITERATORS = ("__iter__", "__reversed__", "irange", "irange_items", "_iter_items", "_iter_values")
_forks = [0]  # bumped in the child of every fork(): a durable index compares it with its own
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class _WriteLock:
    """A durable index's write lock (a threading.Lock) that refuses a forked child.

    Every write and checkpoint holds it, so it is the one place to check:
    entering it in a child of fork() raises ForkedError before waiting, as
    a parent thread may have held it at the fork, and no one would release it.
    """

    __slots__ = ("_lock", "_fork", "_path")

    def __init__(self, path):
        self._lock, self._fork, self._path = threading.Lock(), _forks[0], path

    def forked(self) -> bool:
        """Whether this is a child of fork() of the process that made the lock."""
        return self._fork != _forks[0]

    def __enter__(self):
        if self._fork != _forks[0]:
            raise ForkedError(f"durable index {self._path} was opened by the parent of this forked process: "
                              "the child may read it but not write (the log belongs to the parent); "
                              "open the directory in the child once the parent has closed it")
        self._lock.acquire()

    def __exit__(self, *exc):
        self._lock.release()


class Recovery(NamedTuple):
    """What opening a durable index did (DurableIndex.recovery)."""
    replayed: int  # log records applied on top of the snapshot
    skipped: int  # log records the snapshot already held (a checkpoint cut short before emptying the log)
    bytes_set_aside: int  # bytes cut off the log's end (0: none)
    side_file: Optional[str]  # the file that keeps them, or None
    reason: Optional[str]  # why they were cut, or what else was repaired; None if nothing


def rebuilt(index: Index, flow) -> Index:
    """index's entries in a freshly built tree: what a bulk load of them makes.

    The tree keeps index's flow if it has one; otherwise flow ("auto", "on",
    "off", a Flow or a flow file) is applied as bulk_load applies it.  Cost:
    one bulk load of len(index) keys, plus training when a flow is trained.
    """
    keys, values = index._export()
    choice = choose_flow(keys, index.flow if index.flow is not None else flow)
    fresh = type(index)._from_entries(keys, values, index.value_dtype, choice.flow, choice.bucket_size,
                                      (choice.tail_conflicts_raw, choice.tail_conflicts_flow))
    fresh._flow_reason = choice.reason
    return fresh


def apply(index: Index, record) -> np.ndarray:
    """Applies one log record to index: what the write call returns, as an array (or None)."""
    keys = record.keys.view(index.key_dtype)
    if record.op == wal.DELETE:
        return index.delete_many(keys)
    values = record.values if record.values.dtype == object else record.values.view(index.value_dtype)
    if record.op == wal.INSERT:
        return index.insert_many(keys, values)
    return index.put_many(keys, values)


class DurableIndex:
    """An ordered map like nfl.Index, backed by a snapshot and a write-ahead log.

    Open one with nfl.open(path); reads are those of Index, writes are logged
    before they are acknowledged; checkpoint() folds the log into the
    snapshot; close() (or the with block) releases the directory.
    recovery: a Recovery, what opening did (see the module docstring).
    """

    def __init__(self, path, key_dtype=None, value_dtype=None, sync="always", strict=False, flow=None):
        """Opens (or creates) the durable index in directory path: see nfl.open, which calls it.

        Raises as nfl.open does (LockedError, SnapshotError, WalError,
        ValueError for an unknown sync, TypeError/ValueError for a bad flow).
        Cost: O(n) to load the snapshot and replay the log.
        """
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}; got {sync!r}")
        self._flow = None if flow is None else check_flow_arg(flow)  # None: checkpoints keep the tree
        self._flow_tried_at = 0  # entries when a checkpoint last chose no flow
        self.path = os.fspath(path)
        self.sync = sync
        self.recovery = None
        self._lock = _WriteLock(self.path)
        self._lock_file = self._wal = self._index = None
        try:
            self._open(key_dtype, value_dtype, strict)
        except BaseException:
            self._release()
            raise

    def _file(self, name):
        return os.path.join(self.path, name)

    def _open(self, key_dtype, value_dtype, strict):
        if key_dtype is not None:
            key_dtype = _keys.dtype_name(key_dtype, tuple(_keys.KEY_DTYPES), "key")
        if value_dtype is not None:
            value_dtype = _keys.dtype_name(value_dtype, _keys.INDEX_VALUE_DTYPES, "value")
        if not os.path.isdir(self.path):
            if os.path.exists(self.path):
                raise NotADirectoryError(f"{self.path} is not a durable index directory "
                                         "(a snapshot file opens with nfl.Index.load)")
            os.makedirs(self.path)
            fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        self._lock_file = open(self._file("LOCK"), "a+b", buffering=0)
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{self.path} is already open (by this or another process)") from None
        snap, log = self._file("snapshot"), self._file("wal")
        for path in (snap, log):
            remove_temps(path)  # of a checkpoint or creation that was killed
        note = self._create(snap, log, key_dtype, value_dtype)
        saved, head = snapshot.load(snap)
        index = Index._from_record(saved, snap)
        for what, asked, held in (("key", key_dtype, index.key_dtype), ("value", value_dtype, index.value_dtype)):
            if asked not in (None, held):
                raise SnapshotError(f"{self.path} holds {held} {what}s; opened with {what}_dtype={asked!r}")
        records, end = wal.read(log)
        tail = wal.tail(log, end)
        if tail is not None and not tail.torn and strict:
            raise WalError(f"{log}: {tail.why}; not opened (strict=True), nothing changed")
        seq = head["wal_seq"]
        if records and records[0].seq > seq + 1:
            raise WalError(f"{log}: records {seq + 1}..{records[0].seq - 1} are missing")
        replay = [record for record in records if record.seq > seq]
        for record in replay:
            try:
                apply(index, record)
            except (ValueError, TypeError) as exc:  # a record no write call could have logged
                raise WalError(f"{log}: record {record.seq} refused by the index ({exc})") from None
            seq = record.seq
        side = None if tail is None else self._set_aside(tail, seq + 1)
        if not replay:
            end = wal.START  # the snapshot holds every record (a checkpoint was cut short)
        self._wal = wal.Wal(log, end, self.sync == "always")
        self._index, self._seq = index, seq
        self.recovery = Recovery(len(replay), len(records) - len(replay), 0 if tail is None else len(tail.data),
                                 side, note if tail is None else tail.why)

    def _create(self, snap, log, key_dtype, value_dtype):
        """Makes the files of a new store (the log first); a note if it completed a cut-short creation.

        Raises if one file is there without the other, as no crash leaves them.
        """
        if os.path.exists(snap):
            if not os.path.exists(log):
                head = snapshot.read_header(snap)
                raise WalNotFoundError(2, f"durable index has a snapshot (of log records up to "
                                          f"{head['wal_seq']}) but no log: writes after it would be lost", log)
            return None
        note = None
        if os.path.exists(log):
            records, end = wal.read(log)
            if records or wal.tail(log, end) is not None:
                raise SnapshotNotFoundError(2, "durable index has a log but no snapshot", snap)
            note = "creation cut short after the log: the empty snapshot was written"
        else:
            wal.create(log)
        snapshot.save(Index(key_dtype or "uint64", value_dtype or "int64")._to_record(), snap)
        return note

    def _set_aside(self, tail, next_seq) -> str:
        """Writes the bytes of a log's tail to a new side file (durably), warns, and returns its path."""
        side = self._file(f"wal.tail-{next_seq}")
        k = 0
        while os.path.exists(side if k == 0 else f"{side}.{k}"):
            k += 1
        side = side if k == 0 else f"{side}.{k}"
        atomic_write(side, [tail.data])
        warnings.warn(RecoveryWarning(f"{self.path}: {tail.why}; not applied; its {len(tail.data)} bytes "
                                      f"are kept in {side}"), stacklevel=6)
        return side

    def _live(self) -> Index:
        index = self._index
        if index is None:
            raise ValueError(f"durable index {self.path} is closed")
        return index

    # ---- writes ----------------------------------------------------------------

    def _write(self, op, keys, values=None):
        with self._lock:
            return self._log_and_apply(op, keys, values)

    def _log_and_apply(self, op, keys, values):
        """Logs one record, then applies it; the caller holds self._lock, so log order is apply order."""
        index = self._live()
        record = wal.Record(self._seq + 1, op, keys, values)
        if keys.size == 0:
            return apply(index, record)
        self._wal.append(*record)
        self._seq = record.seq
        try:
            return apply(index, record)
        except BaseException:
            self._release()  # logged but not applied: reopening replays it
            raise

    def _key_bits(self, key):
        return np.array([_keys.key_bits(key, self._live().key_dtype)], dtype=np.uint64)

    def _entry_bits(self, key, value):
        dtype = self._live().value_dtype
        if dtype == "object":  # logged pickled (wal.encode)
            return self._key_bits(key), _keys.object_array((value,), 1)
        return self._key_bits(key), np.array([_keys.value_bits(value, dtype)], dtype=np.uint64)

    def _key_array(self, keys):
        return _keys.key_array(keys, self._live().key_dtype)

    def _entry_arrays(self, keys, values):
        k = self._key_array(keys)
        dtype = self._live().value_dtype
        if dtype == "object":
            return k, _keys.object_array(values, k.size)
        return k, _keys.value_array(values, dtype, k.size)

    def __setitem__(self, key, value):
        """Upserts key: logged, then applied.

        Raises ValueError/TypeError for a key or value the dtypes cannot hold (nothing logged),
        ValueError once closed, ForkedError in a child of fork(), OSError if the log write fails.
        Cost: one log record (fdatasync'd with sync="always"), then O(depth).
        """
        self._write(wal.UPSERT, *self._entry_bits(key, value))

    def insert(self, key, value) -> bool:
        """Adds key; False (and no change) if it is already there.

        Raises ValueError/TypeError for a key or value the dtypes cannot hold (nothing logged),
        ValueError once closed, ForkedError in a child of fork(), OSError if the log write fails.
        Cost: one log record (fdatasync'd with sync="always"), then O(depth).
        """
        return bool(self._write(wal.INSERT, *self._entry_bits(key, value))[0])

    def replace(self, key, value) -> bool:
        """Changes the value of an existing key; False if it is absent (nothing is logged).

        Raises ValueError/TypeError for a key or value the dtypes cannot hold (nothing logged),
        ValueError once closed, ForkedError in a child of fork(), OSError if the log write fails.
        Cost: one log record (fdatasync'd with sync="always"), then O(depth).
        """
        keys, values = self._entry_bits(key, value)
        with self._lock:  # logged as an upsert of a key known to be there
            index = self._live()
            if not index.contains_many(keys.view(index.key_dtype))[0]:
                return False
            self._log_and_apply(wal.UPSERT, keys, values)
        return True

    def delete(self, key) -> bool:
        """Removes key; False if it was absent.

        Raises ValueError/TypeError for a key or value the dtypes cannot hold (nothing logged),
        ValueError once closed, ForkedError in a child of fork(), OSError if the log write fails.
        Cost: one log record (fdatasync'd with sync="always"), then O(depth).
        """
        return bool(self._write(wal.DELETE, self._key_bits(key))[0])

    def __delitem__(self, key):
        """Removes key; KeyError if it is absent.

        KeyError for an absent key. Raises ValueError/TypeError for a key or value the dtypes cannot
        hold (nothing logged), ValueError once closed, ForkedError in a child of fork(), OSError if
        the log write fails. Cost: one log record (fdatasync'd with sync="always"), then O(depth).
        """
        if not self.delete(key):
            raise KeyError(key)

    def pop(self, key, default=_MISSING):
        """Removes key (one delete record) and returns its value; default (nothing logged) or KeyError if absent.

        Raises ValueError/TypeError for a key or value the dtypes cannot hold (nothing logged),
        ValueError once closed, ForkedError in a child of fork(), OSError if the log write fails.
        Cost: one log record (fdatasync'd with sync="always"), then O(depth).
        """
        keys = self._key_bits(key)
        with self._lock:
            value = self._live().get(key, _MISSING)
            if value is _MISSING:
                if default is _MISSING:
                    raise KeyError(key)
                return default
            self._log_and_apply(wal.DELETE, keys, None)
        return value

    def popitem(self, last=True):
        """Removes the largest (smallest with last=False) entry, one delete record; KeyError if empty.

        Raises ValueError/TypeError for a key or value the dtypes cannot hold (nothing logged),
        ValueError once closed, ForkedError in a child of fork(), OSError if the log write fails.
        Cost: one log record (fdatasync'd with sync="always"), then O(depth).
        """
        with self._lock:
            try:
                key, value = self._live().peekitem(-1 if last else 0)
            except IndexError:
                raise KeyError("popitem(): index is empty") from None
            self._log_and_apply(wal.DELETE, self._key_bits(key), None)
        return key, value

    def setdefault(self, key, default=None):
        """The value of key; if absent, logs and inserts default first (checked only then).

        Raises ValueError/TypeError for a key or value the dtypes cannot hold (nothing logged),
        ValueError once closed, ForkedError in a child of fork(), OSError if the log write fails.
        Cost: one log record (fdatasync'd with sync="always"), then O(depth).
        """
        self._key_bits(key)
        with self._lock:
            index = self._live()
            value = index.get(key, _MISSING)
            if value is _MISSING:
                self._log_and_apply(wal.INSERT, *self._entry_bits(key, default))
                value = index[key]
        return value

    def update(self, other=(), /):
        """Upserts every pair of other (a mapping or (key, value) pairs, as dict.update): one log record.

        TypeError/ValueError for an element that is not a pair (nothing logged). Raises
        ValueError/TypeError for a key or value the dtypes cannot hold (nothing logged), ValueError
        once closed, ForkedError in a child of fork(), OSError if the log write fails. Cost: O(m)
        Python work for m pairs, one log record, then the batch upsert.
        """
        self._write(wal.UPSERT, *self._live()._pair_bits(other))

    def clear(self):
        """Removes every entry: one delete record of all the keys.

        Raises ValueError/TypeError for a key or value the dtypes cannot hold (nothing logged),
        ValueError once closed, ForkedError in a child of fork(), OSError if the log write fails.
        Cost: O(n): a record of n keys, then n deletes.
        """
        with self._lock:
            keys, _ = self._live()._export()
            self._log_and_apply(wal.DELETE, keys.view(np.uint64), None)

    def put_many(self, keys, values):
        """Upserts a batch (one log record); with duplicate keys the last wins.

        ValueError for a length mismatch. Raises ValueError/TypeError for a key or value the dtypes
        cannot hold (nothing logged), ValueError once closed, ForkedError in a child of fork(),
        OSError if the log write fails. Cost: one log record of m keys, then O(m * depth).
        """
        self._write(wal.UPSERT, *self._entry_arrays(keys, values))

    def insert_many(self, keys, values):
        """Inserts a batch (one log record); a bool array, False where the key existed.

        ValueError for a length mismatch. Raises ValueError/TypeError for a key or value the dtypes
        cannot hold (nothing logged), ValueError once closed, ForkedError in a child of fork(),
        OSError if the log write fails. Cost: one log record of m keys, then O(m * depth).
        """
        return self._write(wal.INSERT, *self._entry_arrays(keys, values))

    def delete_many(self, keys):
        """Deletes a batch (one log record); a bool array, True where the key was there.

        Raises ValueError/TypeError for a key or value the dtypes cannot hold (nothing logged),
        ValueError once closed, ForkedError in a child of fork(), OSError if the log write fails.
        Cost: one log record of m keys, then O(m * depth).
        """
        return self._write(wal.DELETE, self._key_array(keys))

    # ---- checkpoint and close ------------------------------------------------------

    def checkpoint(self) -> None:
        """Saves a snapshot of the current contents and empties the log.

        Opened with flow=..., it first rebuilds the tree as a bulk load of the
        same entries would (a tree grown by inserts can be deeper), applying
        flow while the index has none (again once the entries have doubled
        since a choice kept none); the snapshot then holds that flow, so a
        reopened index has it too.

        Raises ValueError once closed, ForkedError in a child of fork(),
        OSError from the file system (the old snapshot and the log are then
        intact).  Cost: O(n): the snapshot written and fsynced, the log
        truncated; with flow=, a bulk load of n entries (and training, when a
        flow is trained).
        """
        with self._lock:
            index = self._live()
            if self._flow is not None:
                retry = index.flow is None and len(index) >= 2 * max(self._flow_tried_at, 1)
                index = self._index = rebuilt(index, self._flow if retry else "off")
                if retry and index.flow is None:
                    self._flow_tried_at = len(index)
            snapshot.save(index._to_record(), self._file("snapshot"), wal_seq=self._seq)
            self._wal.reset()

    def _release(self):
        """Closes the log and the lock; the index is unusable afterwards."""
        self._index = None
        for f in (self._wal, self._lock_file):
            if f is not None:
                f.close()  # closing the lock file releases the flock
        self._wal = self._lock_file = None

    def close(self) -> None:
        """Flushes (sync="none") and closes the log and releases the lock; idempotent.

        In a child of fork() it drops the child's copies of the files only;
        the parent's store stays open.  Iterators taken before raise
        ValueError afterwards.  Raises OSError only if the final flush
        fails.  Cost: O(1) (a flush with sync="none").
        """
        if self._lock.forked():
            self._release()  # not under self._lock: in the child it raises ForkedError
            return
        with self._lock:
            self._release()

    @property
    def closed(self) -> bool:
        """Whether close() has run (then every read and write raises ValueError)."""
        return self._index is None

    def __enter__(self):
        """The index itself, for a with block that closes it.  Raises ValueError if closed.  Cost: O(1)."""
        self._live()
        return self

    def __exit__(self, *exc):
        """Closes the index (see close); exceptions of the block propagate.  Cost: as close()."""
        self.close()

    # ---- reads: those of Index -----------------------------------------------------

    @property
    def key_dtype(self) -> str:
        """The key dtype's name, as Index.key_dtype; ValueError once closed."""
        return self._live().key_dtype

    @property
    def value_dtype(self) -> str:
        """The value dtype's name, as Index.value_dtype; ValueError once closed."""
        return self._live().value_dtype

    @property
    def flow(self):
        """The Flow in use, or None, as Index.flow; ValueError once closed."""
        return self._live().flow

    def __repr__(self):
        if self._index is None:
            return f"<nfl.DurableIndex {self.path} (closed)>"
        return (f"<nfl.DurableIndex {self.path} {self._index.key_dtype}->{self._index.value_dtype}, "
                f"{len(self._index)} keys, sync={self.sync}>")


def _read_doc(name):
    """The docstring of a read: Index's, and what the durable index adds to its contract."""
    return (f"{getattr(Index, name).__doc__}\n\nAs Index.{name} (the single-key reads: see Index's class "
            f"docstring): the same exceptions, plus ValueError once the durable index is closed, and the same cost.")


def _reader(name):
    def read(self, *args, **kwargs):
        return getattr(self._live(), name)(*args, **kwargs)

    read.__name__ = read.__qualname__ = name
    read.__doc__ = _read_doc(name)
    return read


def _iterator(name):
    def iterate(self, *args, **kwargs):
        for item in getattr(self._live(), name)(*args, **kwargs):
            self._live()  # ValueError once the durable index is closed
            yield item

    iterate.__name__ = iterate.__qualname__ = name
    iterate.__doc__ = _read_doc(name)
    return iterate


def _view(view):
    def make(self):
        return view(self)

    make.__name__ = make.__qualname__ = view.__name__[:-4].lower()
    make.__doc__ = (f"A live {view.__name__} of the durable index (nfl.views); iterating it after close() "
                    f"raises ValueError.  Cost: O(1); iterating it O(n).")
    return make


for _view_type in (views.KeysView, views.ItemsView, views.ValuesView):
    setattr(DurableIndex, _view_type.__name__[:-4].lower(), _view(_view_type))
del _view_type
for _name in _READS:
    setattr(DurableIndex, _name, _reader(_name))
for _name in _ITERATORS:
    setattr(DurableIndex, _name, _iterator(_name))
del _name
DurableIndex.__hash__ = None  # mutable, as dict
collections.abc.MutableMapping.register(DurableIndex)


def open_durable(path, key_dtype=None, value_dtype=None, sync="always", strict=False, flow=None) -> DurableIndex:
    """The durable index in directory path, created (empty, with these dtypes) if absent.

    key_dtype/value_dtype None take the stored ones (uint64/int64 for a new
    index); given ones must match what is stored, else SnapshotError.  A
    torn or damaged last log record is set aside with a RecoveryWarning
    (see DurableIndex.recovery); strict=True raises WalError for a damaged
    one instead.  flow: None (checkpoints keep the tree as it grew) or as
    bulk_load's flow= (checkpoints rebuild the tree and keep the flow: see
    DurableIndex.checkpoint).
    """
    return DurableIndex(os.fspath(path), key_dtype, value_dtype, sync, strict, flow)
