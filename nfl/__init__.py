"""nfl: a learned-index key-value engine (a normalizing flow in front of AFLI).

    import numpy as np, nfl
    idx = nfl.Index.bulk_load(np.array([3, 1, 2], dtype=np.uint64))
    idx[4] = 40; idx.get(4); idx.range(1, 3)
"""
from nfl.index import Index

__all__ = ["Index", "Flow", "open", "DurableIndex", "SnapshotError", "SnapshotNotFoundError",
           "WalError", "LockedError"]
__version__ = "0.1.0"


def open(path, key_dtype=None, value_dtype=None, sync="always", flow=None):
    """A durable index in directory path: a snapshot plus a write-ahead log.

    key_dtype / value_dtype default to what is stored (uint64 / int64 for a
    new store); sync="always" fsyncs every write call before it returns.
    flow="auto" (or "on", a Flow, a flow file) makes checkpoints rebuild the
    tree as bulk_load would, training or loading a flow kept in the snapshot.
    """
    from nfl.storage import open_durable

    return open_durable(path, key_dtype=key_dtype, value_dtype=value_dtype, sync=sync, flow=flow)


_STORAGE_NAMES = ("DurableIndex", "SnapshotError", "SnapshotNotFoundError", "WalError", "LockedError")


def __getattr__(name):
    # nfl.Flow and the storage names load on first use: the index needs neither.
    if name == "Flow":
        from nfl.flow import Flow

        return Flow
    if name in _STORAGE_NAMES:
        from nfl import storage

        return getattr(storage, name)
    raise AttributeError(f"module 'nfl' has no attribute {name!r}")
