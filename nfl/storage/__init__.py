"""Persistence: atomic checksummed snapshots, a write-ahead log, durable indexes.

    snapshot.py   the snapshot codec: a Record (an index as plain data) <-> one file
    wal.py        the write-ahead log
    durable.py    DurableIndex: snapshot + log in a directory (nfl.open)
    files.py      durable file primitives (atomic_write)

Dependencies run one way: nfl.Index converts to and from a snapshot Record,
and the durable index sits above both, so this package imports neither of
them.  Errors: SnapshotError and WalError (ValueError), SnapshotNotFoundError
(also FileNotFoundError), LockedError (BlockingIOError, an OSError).
"""
from nfl.storage import snapshot
from nfl.storage.errors import LockedError, SnapshotError, SnapshotNotFoundError, WalError

__all__ = ["read_header", "snapshot", "SnapshotError", "SnapshotNotFoundError", "WalError", "LockedError"]

read_header = snapshot.read_header
