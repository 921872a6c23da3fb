"""nfl: a learned-index key-value engine (a normalizing flow in front of AFLI).

    import numpy as np, nfl
    idx = nfl.Index.bulk_load(np.array([3, 1, 2], dtype=np.uint64))
    idx[4] = 40; idx.get(4); idx.range(1, 3)
"""
from nfl.index import Index

__all__ = ["Index", "Flow", "open"]
__version__ = "0.1.0"


def open(path, key_dtype="uint64", value_dtype="int64", sync="always"):
    """A durable index at path: a snapshot plus a write-ahead log (nfl.storage)."""
    from nfl.storage import open_durable

    return open_durable(path, key_dtype=key_dtype, value_dtype=value_dtype, sync=sync)


def __getattr__(name):
    # nfl.Flow lives in nfl.flow, imported on first use: the index never needs it.
    if name == "Flow":
        from nfl.flow import Flow

        return Flow
    raise AttributeError(f"module 'nfl' has no attribute {name!r}")
