"""nfl: a learned-index key-value engine (a normalizing flow in front of AFLI).

    import numpy as np, nfl
    idx = nfl.Index.bulk_load(np.array([3, 1, 2], dtype=np.uint64))
    idx[4] = 40; idx.get(4); idx.range(1, 3)
"""
from nfl.index import Index

__all__ = ["Index", "Flow"]
__version__ = "0.1.0"


def __getattr__(name):
    # nfl.Flow lives in nfl.flow, imported on first use: the index never needs it.
    if name == "Flow":
        from nfl.flow import Flow

        return Flow
    raise AttributeError(f"module 'nfl' has no attribute {name!r}")
