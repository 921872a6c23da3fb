"""Persistence: atomic checksummed snapshots, a write-ahead log, durable indexes.

    snapshot.py   the snapshot codec: a Record (an index as plain data) <-> one file
    wal.py        the write-ahead log
    durable.py    DurableIndex: snapshot + log in a directory (nfl.open)
    files.py      durable file primitives (atomic_write)

Dependencies run one way: nfl.Index converts to and from a snapshot Record,
and the durable index sits above both, so this package imports neither of
them.  Errors: SnapshotError and WalError (ValueError), SnapshotNotFoundError and
WalNotFoundError (also FileNotFoundError), LockedError (BlockingIOError, an
OSError), ForkedError (RuntimeError); RecoveryWarning when opening set bytes
of a damaged log aside (durable.py says which damage does what).
"""
from nfl.storage import snapshot
from nfl.storage.errors import (ForkedError, LockedError, RecoveryWarning, SnapshotError, SnapshotNotFoundError,
                                WalError, WalNotFoundError)

__all__ = ["read_header", "snapshot", "SnapshotError", "SnapshotNotFoundError", "WalError", "WalNotFoundError",
           "LockedError", "ForkedError", "RecoveryWarning"]

read_header = snapshot.read_header
