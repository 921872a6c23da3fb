"""DurableIndex: an Index whose acknowledged writes survive a crash.

A durable index is a directory:

    LOCK       held with flock(LOCK_EX) while open: one writer process at a time
    snapshot   the index as of log record wal_seq (snapshot.py)
    wal        records after that snapshot (wal.py)

Every write call validates its input, appends one log record (fdatasync'd
when sync="always"), applies it to the in-memory Index and only then
returns.  checkpoint() saves a snapshot that names the last record it holds,
then empties the log; a crash between the two leaves records the snapshot
already holds, and opening skips them by their seq.
"""
import fcntl
import os
import threading

import numpy as np

from nfl import _keys
from nfl.index import Index
from nfl.storage import snapshot, wal
from nfl.storage.errors import LockedError, SnapshotError, SnapshotNotFoundError, WalError
from nfl.storage.files import fsync_dir, remove_temps

SYNC_MODES = ("always", "none")
_READS = ("get", "__getitem__", "__contains__", "__len__", "__iter__", "get_many", "contains_many",
          "range", "scan", "lower_bound", "min_key", "max_key", "items", "keys", "values",
          "stats", "memory_usage", "save")


def rebuilt(index: Index, flow) -> Index:
    """index's entries in a freshly built tree (what a bulk load makes of them).

    The tree keeps index's flow if it has one; otherwise flow ("auto", "on",
    a Flow or a flow file) is trained or loaded and kept as bulk_load keeps it.
    Cost: a bulk load of len(index) keys, plus training when a flow is trained.
    """
    from nfl.switch import choose_flow

    keys, values = index._export()
    choice = choose_flow(keys, index.flow if index.flow is not None else flow)
    return Index._from_entries(keys, values, index.value_dtype, choice.flow, choice.bucket_size,
                               (choice.tail_conflicts_raw, choice.tail_conflicts_flow))


def apply(index: Index, record) -> np.ndarray:
    """Applies one log record to index: what the write call returns, as an array (or None)."""
    keys = record.keys.view(index.key_dtype)
    if record.op == wal.DELETE:
        return index.delete_many(keys)
    values = record.values.view(index.value_dtype)
    if record.op == wal.INSERT:
        return index.insert_many(keys, values)
    return index.put_many(keys, values)


class DurableIndex:
    """An ordered map like nfl.Index, backed by a snapshot and a write-ahead log.

    Open one with nfl.open(path); reads are those of Index, writes are logged
    before they are acknowledged; checkpoint() folds the log into the
    snapshot; close() (or the with block) releases the directory.
    """

    def __init__(self, path, key_dtype=None, value_dtype=None, sync="always", flow=None):
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}; got {sync!r}")
        if flow is not None and not (isinstance(flow, (str, os.PathLike)) or type(flow).__name__ == "Flow"):
            raise TypeError(f'flow must be None, "auto", "on", "off", a Flow or a path; got {flow!r}')
        self.path = os.fspath(path)
        self.sync = sync
        self._flow = flow  # None: checkpoints keep the tree as it is
        self._flow_tried_at = 0  # keys when a checkpoint last chose no flow
        self._lock = threading.Lock()
        self._lock_file = self._wal = self._index = None
        try:
            self._open(key_dtype, value_dtype)
        except BaseException:
            self._release()
            raise

    def _file(self, name):
        return os.path.join(self.path, name)

    def _open(self, key_dtype, value_dtype):
        if key_dtype is not None:
            key_dtype = _keys.dtype_name(key_dtype, tuple(_keys.KEY_DTYPES), "key")
        if value_dtype is not None:
            value_dtype = _keys.dtype_name(value_dtype, _keys.VALUE_DTYPES, "value")
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
        if not os.path.exists(snap):
            if os.path.exists(log):
                raise SnapshotNotFoundError(2, "durable index has a log but no snapshot", snap)
            empty = Index(key_dtype or "uint64", value_dtype or "int64")
            snapshot.save(empty, snap)
        index, head = snapshot.load(snap)
        for what, asked, held in (("key", key_dtype, index.key_dtype), ("value", value_dtype, index.value_dtype)):
            if asked not in (None, held):
                raise SnapshotError(f"{self.path} holds {held} {what}s; opened with {what}_dtype={asked!r}")
        if not os.path.exists(log):
            wal.create(log)
        records, end = wal.read(log)
        seq = head["wal_seq"]
        if records and records[0].seq > seq + 1:
            raise WalError(f"{log}: records {seq + 1}..{records[0].seq - 1} are missing")
        for record in records:
            if record.seq > seq:
                try:
                    apply(index, record)
                except (ValueError, TypeError) as exc:  # a record no write call could have logged
                    raise WalError(f"{log}: record {record.seq} refused by the index ({exc})") from None
                seq = record.seq
        if seq == head["wal_seq"]:
            end = wal.START  # the snapshot holds every record (a checkpoint was cut short)
        self._wal = wal.Wal(log, end, self.sync == "always")
        self._index, self._seq = index, seq

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
        value_bits = _keys.value_bits(value, self._live().value_dtype)
        return self._key_bits(key), np.array([value_bits], dtype=np.uint64)

    def _key_array(self, keys):
        return _keys.key_array(keys, self._live().key_dtype)

    def _entry_arrays(self, keys, values):
        k = self._key_array(keys)
        return k, _keys.value_array(values, self._live().value_dtype, k.size)

    def __setitem__(self, key, value):
        self._write(wal.UPSERT, *self._entry_bits(key, value))

    def insert(self, key, value) -> bool:
        """Adds key; False (and no change) if it is already there."""
        return bool(self._write(wal.INSERT, *self._entry_bits(key, value))[0])

    def update(self, key, value) -> bool:
        """Changes the value of an existing key; False if it is absent (nothing is logged)."""
        keys, values = self._entry_bits(key, value)
        with self._lock:  # logged as an upsert of a key known to be there
            index = self._live()
            if not index.contains_many(keys.view(index.key_dtype))[0]:
                return False
            self._log_and_apply(wal.UPSERT, keys, values)
        return True

    def delete(self, key) -> bool:
        """Removes key; False if it was absent."""
        return bool(self._write(wal.DELETE, self._key_bits(key))[0])

    def __delitem__(self, key):
        if not self.delete(key):
            raise KeyError(key)

    def put_many(self, keys, values):
        """Upserts a batch (one log record); with duplicate keys the last wins."""
        self._write(wal.UPSERT, *self._entry_arrays(keys, values))

    def insert_many(self, keys, values):
        """Inserts a batch (one log record); a bool array, False where the key existed."""
        return self._write(wal.INSERT, *self._entry_arrays(keys, values))

    def delete_many(self, keys):
        """Deletes a batch (one log record); a bool array, True where the key was there."""
        return self._write(wal.DELETE, self._key_array(keys))

    # ---- checkpoint and close ------------------------------------------------------

    def checkpoint(self) -> None:
        """Saves a snapshot of the current contents and empties the log.

        Opened with flow=..., it first rebuilds the tree as a bulk load of the
        same keys would (a tree grown by inserts may be deeper), training or
        loading a flow while it has none (again once the keys have doubled
        since a choice kept none); the snapshot then holds that flow.
        """
        with self._lock:
            index = self._live()
            if self._flow is not None:
                retry = index.flow is None and len(index) >= 2 * max(self._flow_tried_at, 1)
                index = self._index = rebuilt(index, self._flow if retry else "off")
                if retry and index.flow is None:
                    self._flow_tried_at = len(index)
            snapshot.save(index, self._file("snapshot"), wal_seq=self._seq)
            self._wal.reset()

    def _release(self):
        """Closes the log and the lock; the index is unusable afterwards."""
        self._index = None
        for f in (self._wal, self._lock_file):
            if f is not None:
                f.close()  # closing the lock file releases the flock
        self._wal = self._lock_file = None

    def close(self) -> None:
        """Flushes (sync="none") and closes the log and releases the lock; idempotent."""
        with self._lock:
            self._release()

    @property
    def closed(self) -> bool:
        return self._index is None

    def __enter__(self):
        self._live()
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- reads: those of Index -----------------------------------------------------

    @property
    def key_dtype(self) -> str:
        return self._live().key_dtype

    @property
    def value_dtype(self) -> str:
        return self._live().value_dtype

    @property
    def flow(self):
        return self._live().flow

    def __repr__(self):
        if self._index is None:
            return f"<nfl.DurableIndex {self.path} (closed)>"
        return (f"<nfl.DurableIndex {self.path} {self._index.key_dtype}->{self._index.value_dtype}, "
                f"{len(self._index)} keys, sync={self.sync}>")


def _reader(name):
    def read(self, *args, **kwargs):
        return getattr(self._live(), name)(*args, **kwargs)

    read.__name__ = read.__qualname__ = name
    read.__doc__ = getattr(Index, name).__doc__
    return read


for _name in _READS:
    setattr(DurableIndex, _name, _reader(_name))
del _name
