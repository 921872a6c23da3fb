"""Key files in SOSD format: a little-endian uint64 count N, then N little-endian keys.

The key type comes from the file name suffix (``_uint64``, ``_int64``,
``_float64``; SOSD's ``_uint32`` files are read too and widened to uint64) or
from an explicit ``dtype``. Reads are memory-mapped, so a 200M-key SOSD file
costs no RAM until it is touched, and every size mismatch is an error, never a
short read.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from nfl.storage.files import atomic_file

#: Key types by SOSD suffix; the on-disk element is little-endian.
DTYPES = {
    "uint64": np.dtype("<u8"),
    "int64": np.dtype("<i8"),
    "float64": np.dtype("<f8"),
    "uint32": np.dtype("<u4"),
}
#: Types nfl keys can have in memory (and that ``write_keys`` writes).
KEY_DTYPES = (np.dtype(np.uint64), np.dtype(np.int64), np.dtype(np.float64))

_HEADER = 8
_SUFFIX = re.compile(r"_(uint64|int64|float64|uint32)(\.[A-Za-z0-9]+)?$")


def suffix_dtype(path) -> str | None:
    """The key type named by the file's suffix (``books_200M_uint64`` -> ``"uint64"``), or None."""
    m = _SUFFIX.search(Path(path).name)
    return m.group(1) if m else None


def _dtype_name(dtype) -> str:
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name not in DTYPES:
        raise ValueError(f"unknown key type {dtype!r}: use one of {', '.join(DTYPES)}")
    return name


def read_keys(path, dtype=None) -> np.ndarray:
    """Memory-map the keys of an SOSD file (read-only; uint32 files come back as uint64).

    ``dtype`` overrides the type named by the suffix. Raises ``ValueError`` when
    the type is unknown or the file size does not match its count header.
    """
    path = Path(path)
    name = _dtype_name(dtype) if dtype is not None else suffix_dtype(path)
    if name is None:
        raise ValueError(
            f"{path}: cannot tell the key type; the name must end in "
            f"{', '.join('_' + d for d in DTYPES)} or a dtype must be given"
        )
    disk = DTYPES[name]
    size = path.stat().st_size
    if size < _HEADER:
        raise ValueError(f"{path}: truncated SOSD file: {size} bytes, shorter than the 8-byte count header")
    with open(path, "rb") as f:
        count = int(np.frombuffer(f.read(_HEADER), dtype="<u8")[0])
    expected = _HEADER + count * disk.itemsize
    if size != expected:
        what = "truncated" if size < expected else "mis-sized"
        raise ValueError(
            f"{path}: {what} SOSD file: the header declares {count:,} {name} keys "
            f"({expected:,} bytes) but the file has {size:,} bytes"
        )
    if count == 0:
        keys = np.empty(0, dtype=disk)
    else:
        keys = np.memmap(path, dtype=disk, mode="r", offset=_HEADER, shape=(count,)).view(np.ndarray)
    return keys.astype(np.uint64) if name == "uint32" else keys


def write_keys(path, keys) -> None:
    """Write keys as an SOSD file, atomically (temporary file, then rename).

    The array's type must be uint64, int64 or float64 and agree with the name's
    suffix when it has one.
    """
    path = Path(path)
    keys = np.asarray(keys)
    if keys.ndim != 1 or keys.dtype not in KEY_DTYPES:
        raise ValueError(f"keys must be a 1-D uint64, int64 or float64 array, not {keys.dtype} {keys.shape}")
    named = suffix_dtype(path)
    if named is not None and named != keys.dtype.name:
        raise ValueError(f"{path}: the name says {named} but the keys are {keys.dtype.name}")
    with atomic_file(path) as f:
        f.write(np.uint64(len(keys)).astype("<u8").tobytes())
        keys.astype(keys.dtype.newbyteorder("<"), copy=False).tofile(f)


def dedup(keys) -> tuple[np.ndarray, int]:
    """Sorted unique keys and how many duplicates were removed.

    Already strictly increasing input (the SOSD norm) is returned as is, without
    a copy. NaN keys are rejected: they have no place in an order.
    """
    keys = np.asarray(keys)
    if keys.dtype.kind == "f" and np.isnan(keys).any():
        raise ValueError("NaN keys cannot be indexed")
    if len(keys) < 2 or bool(np.all(keys[1:] > keys[:-1])):
        return keys, 0
    unique = np.unique(keys)
    return unique, len(keys) - len(unique)


def read_unique(path, dtype=None) -> tuple[np.ndarray, int]:
    """``read_keys`` then ``dedup``: sorted unique keys and the duplicate count."""
    return dedup(read_keys(path, dtype))
