"""Persistence: atomic checksummed snapshots, a write-ahead log, durable indexes.

    save_index(idx, path) / load_index(path)       one snapshot file (snapshot.py)
    index_to_bytes(idx) / index_from_bytes(data)   the same format in memory (pickle)
    open_durable(path, ...)                        snapshot + log in a directory (durable.py)

Errors: SnapshotError and WalError (ValueError), SnapshotNotFoundError (also
FileNotFoundError), LockedError (BlockingIOError, an OSError).
"""
import os

from nfl.storage import snapshot
from nfl.storage.durable import DurableIndex
from nfl.storage.errors import LockedError, SnapshotError, SnapshotNotFoundError, WalError

__all__ = ["save_index", "load_index", "index_to_bytes", "index_from_bytes", "read_header",
           "open_durable", "DurableIndex",
           "SnapshotError", "SnapshotNotFoundError", "WalError", "LockedError"]

read_header = snapshot.read_header


def save_index(index, path) -> None:
    """Writes index to path atomically: after a crash, the old file or the new one."""
    snapshot.save(index, path)


def load_index(path):
    """The index saved at path; SnapshotError (or SnapshotNotFoundError) if it cannot be used."""
    return snapshot.load(path)[0]


def index_to_bytes(index) -> bytes:
    """The snapshot of index as bytes (what pickle stores)."""
    return b"".join(snapshot.encode(index))


def index_from_bytes(data):
    """The index whose snapshot bytes are data."""
    return snapshot.decode(data)[0]


def open_durable(path, key_dtype=None, value_dtype=None, sync="always", flow=None) -> DurableIndex:
    """The durable index in directory path, created (empty, with these dtypes) if absent.

    key_dtype/value_dtype None take the stored ones (uint64/int64 for a new
    index); given ones must match what is stored, else SnapshotError.  flow
    ("auto", "on", a Flow or a flow file; None: no rebuilds) makes every
    checkpoint rebuild the tree, with a flow trained or loaded as bulk_load does
    once the index has none and kept in the snapshot; a stored flow is reused.
    """
    return DurableIndex(os.fspath(path), key_dtype, value_dtype, sync, flow)
