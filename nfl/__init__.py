"""nfl: a learned-index key-value engine (a normalizing flow in front of AFLI).

    import numpy as np, nfl
    idx = nfl.Index.bulk_load(np.array([3, 1, 2], dtype=np.uint64))
    idx[4] = 40; idx.get(4); idx.range(1, 3)
"""
from nfl.index import Index

__all__ = ["Index", "Flow", "open", "DurableIndex", "SnapshotError", "SnapshotNotFoundError",
           "WalError", "WalNotFoundError", "LockedError", "ForkedError", "RecoveryWarning"]
__version__ = "0.1.0"


def open(path, key_dtype=None, value_dtype=None, sync="always", strict=False):
    """A durable index in directory path: a snapshot plus a write-ahead log.

    key_dtype / value_dtype default to what is stored (uint64 / int64 for a
    new store); sync="always" fsyncs every write call before it returns.
    Opening sets a torn or damaged last log record aside in a side file with
    a RecoveryWarning (db.recovery says what it did); strict=True raises
    WalError for a damaged one instead.  nfl.storage.durable documents which
    damage is repaired, which reported and which raises.
    """
    from nfl.storage.durable import open_durable

    return open_durable(path, key_dtype=key_dtype, value_dtype=value_dtype, sync=sync, strict=strict)


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
