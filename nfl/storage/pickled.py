"""Object values as bytes: the one pickled form of the snapshot's object-value
section and of the write-ahead log's object-value records.

Unpickling runs code the bytes name: callers unpickle only bytes whose
checksum they have verified, and only files from a trusted source may be
opened (as with pickle itself).
"""
import pickle

import numpy as np

PROTOCOL = 5


def dumps(values) -> bytes:
    """values (any sequence of objects) as one pickle of a list.

    pickle's own error (PicklingError, TypeError, AttributeError ...) for a
    value it cannot pickle."""
    return pickle.dumps(list(values), protocol=PROTOCOL)


def loads(blob, n: int, error, where: str) -> np.ndarray:
    """The object array of the n values in dumps' bytes; error (an exception
    class) naming where if they cannot be unpickled or are not n values."""
    try:
        values = pickle.loads(blob)
    except Exception as exc:  # anything pickle raises: the values cannot be rebuilt
        raise error(f"{where}: object values could not be unpickled ({exc!r})") from None
    if type(values) is not list or len(values) != n:
        raise error(f"{where}: object values section does not hold {n} values")
    return np.fromiter(values, dtype=object, count=n)


def padded(blob: bytes) -> bytes:
    """blob zero-padded to a multiple of 8 bytes."""
    return blob + b"\0" * (-len(blob) % 8)
