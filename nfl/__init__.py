"""nfl: a learned-index key-value engine (a normalizing flow in front of AFLI).

>>> import numpy as np, nfl
>>> idx = nfl.Index.bulk_load(np.array([3, 1, 2], dtype=np.uint64))
>>> idx[4] = 40
>>> idx.get(4), idx.get(5), len(idx)
(40, None, 4)
>>> keys, values = idx.range(1, 3)
>>> keys.tolist(), values.tolist()
([1, 2], [1, 2])

``import nfl`` needs numpy and cffi only; torch (``nfl[train]``) is imported
when a flow is trained.  See the README and ../shared/design/api.md.
"""
import os
from typing import TYPE_CHECKING

from nfl.index import Index

if TYPE_CHECKING:
    from nfl.flow import Flow
    from nfl.storage import DurableIndex

__all__ = ["Index", "Flow", "open", "DurableIndex", "SnapshotError", "SnapshotNotFoundError",
           "WalError", "WalNotFoundError", "LockedError", "ForkedError", "RecoveryWarning"]
__version__ = "0.1.0"


def open(path: "str | os.PathLike[str]", key_dtype: "str | None" = None, value_dtype: "str | None" = None,
         sync: str = "always", strict: bool = False, flow=None) -> "DurableIndex":
    """A durable index in directory path: a snapshot plus a write-ahead log.

    Args: path, the directory (created if missing); key_dtype / value_dtype,
    default what is stored (uint64 / int64 for a new store); sync, "always"
    (fsync every write call before it returns) or "none" (the OS writes it
    back: survives a process crash, not a power loss); strict, raise WalError
    for a damaged last log record instead of setting it aside in a side file
    with a RecoveryWarning (db.recovery says what was done); flow, None
    (checkpoints keep the tree as inserts grew it) or "auto" / "on" / "off" /
    a Flow / a flow file, as bulk_load's: then each checkpoint rebuilds the
    tree as a bulk load of the same entries would, training or loading a flow
    while the index has none, and the snapshot keeps it.
    Returns an open nfl.DurableIndex (a context manager; close() it).
    Raises LockedError if the directory is already open, SnapshotError (a
    ValueError) for a damaged snapshot or dtypes other than the stored ones,
    WalError for a damaged log (see nfl.storage.durable for which damage is
    repaired, reported or raised), ValueError for an unknown sync,
    TypeError/ValueError for a bad flow (as bulk_load).  Cost:
    O(n) to load the snapshot and replay the log.

    >>> import tempfile, nfl
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with nfl.open(d) as db:
    ...         db[1] = 10
    ...     with nfl.open(d) as db:
    ...         db[1]
    10
    """
    from nfl.storage.durable import open_durable

    return open_durable(path, key_dtype=key_dtype, value_dtype=value_dtype, sync=sync, strict=strict, flow=flow)


_STORAGE_NAMES = ("DurableIndex", "SnapshotError", "SnapshotNotFoundError", "WalError", "WalNotFoundError",
                  "LockedError", "ForkedError", "RecoveryWarning")


def __getattr__(name):
    # nfl.Flow and the storage names load on first use: the index needs neither.
    if name == "Flow":
        from nfl.flow import Flow

        return Flow
    if name == "DurableIndex":
        from nfl.storage.durable import DurableIndex

        return DurableIndex
    if name in _STORAGE_NAMES:
        from nfl.storage import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'nfl' has no attribute {name!r}")
