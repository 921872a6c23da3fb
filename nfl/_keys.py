"""Validation and dtype handling at the Python/C boundary.

The C core takes keys as raw 8-byte patterns (uint64) of the index's key
dtype and values as 8-byte words.  Everything here turns user input into
exactly that or raises a clear ValueError/TypeError: a key never wraps around
or rounds to a different key silently.
"""
import math
import struct
import sys

import numpy as np

from nfl import _boundary, _index

KEY_DTYPES = _boundary.KEY_TYPES  # key dtype name -> the C core's key type
VALUE_DTYPES = ("int64", "uint64")
INDEX_VALUE_DTYPES = VALUE_DTYPES + ("object",)  # what an Index may hold
VALUE_KINDS = {"uint64": 0, "int64": 1, "object": 2}  # nfl._index's value_kind

_U64_MAX = 2**64 - 1
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_RANGES = {"uint64": (0, _U64_MAX), "int64": (_I64_MIN, _I64_MAX)}
_DOUBLE = struct.Struct("<d")
_DBL_MAX = sys.float_info.max
_WORD = struct.Struct("<Q")


def dtype_name(dtype, accepted, what) -> str:
    """The canonical name of a key or value dtype, or TypeError."""
    try:  # np.dtype(None) is float64: None names no dtype here
        name = None if dtype is None else np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in accepted:
        raise TypeError(f"{what} dtype must be one of {', '.join(accepted)}; got {dtype!r}")
    return name


# ---- scalars ---------------------------------------------------------------
# One implementation of the scalar rules: the C of nfl._index (native/pyindex.c),
# which the single-key path of nfl.Index runs inline.

_index._bind(*_boundary.core_entry_points(), np.integer, np.floating)
_integral = _index.integral  # (obj, what) -> an exact int from an int-like or integral float


def key_bits(key, dtype: str) -> int:
    """The raw 8-byte pattern of one key in the index's key dtype.

    Raises ValueError (out of range, not integral, NaN, not exactly
    representable: never wraps or rounds) or TypeError (not a number)."""
    return _index.key_bits(key, KEY_DTYPES[dtype])


def key_converter(dtype: str):
    """key_bits for one dtype, as a one-argument function."""
    bits, code = _index.key_bits, KEY_DTYPES[dtype]
    return lambda key: bits(key, code)


def key_from_bits(bits: int, dtype: str):
    """The Python key (int or float) for a raw 8-byte pattern."""
    if dtype == "uint64":
        return bits
    if dtype == "int64":
        return bits - (1 << 64) if bits >> 63 else bits
    return _DOUBLE.unpack(_WORD.pack(bits))[0]


def value_bits(value, dtype: str) -> int:
    """The 8-byte word of one value in the index's value dtype (ValueError/TypeError if it does not fit)."""
    return _index.value_bits(value, dtype == "int64")


def value_converter(dtype: str):
    """value_bits for one dtype, as a one-argument function."""
    bits, signed = _index.value_bits, dtype == "int64"
    return lambda value: bits(value, signed)


def ceil_key(bound, dtype: str):
    """The smallest key of the dtype that is >= bound, or None if none is.

    Turns a bound of any numeric type into a key, so `lo <= key` and
    `key < hi` stay exact for bounds the dtype cannot hold (2.5 for an integer
    index, -1 for uint64, 2**53 + 1 for float64)."""
    return _round_key(bound, dtype, 1)


def floor_key(bound, dtype: str):
    """The largest key of the dtype that is <= bound, or None if none is (ceil_key's mirror)."""
    return _round_key(bound, dtype, -1)


def _round_key(bound, dtype, up):
    """ceil_key (up=1) or floor_key (up=-1); TypeError for a non-number, ValueError for NaN."""
    if isinstance(bound, (float, np.floating)) and math.isnan(bound):
        raise ValueError("bound is NaN")
    if not isinstance(bound, (int, float, np.integer, np.floating)):
        raise TypeError(f"bound must be an int or float, not {type(bound).__name__}")
    if dtype == "float64":
        if isinstance(bound, (float, np.floating)):
            return float(bound)
        b = int(bound)
        try:
            f = float(b)
        except OverflowError:  # past the largest double: the next key outward is an infinity
            return (math.inf if up > 0 else _DBL_MAX) if b > 0 else (-_DBL_MAX if up > 0 else -math.inf)
        if (int(f) - b) * up < 0:
            f = math.nextafter(f, up * math.inf)
        return f
    lo, hi = _RANGES[dtype]
    if isinstance(bound, (float, np.floating)):
        if math.isinf(bound):
            return (lo if up > 0 else None) if bound < 0 else (None if up > 0 else hi)
        b = math.ceil(bound) if up > 0 else math.floor(bound)
    else:
        b = int(bound)
    if b > hi:
        return None if up > 0 else hi
    if b < lo:
        return lo if up > 0 else None
    return b


# ---- arrays ----------------------------------------------------------------


def _as_1d(arr, what) -> np.ndarray:
    """arr as a 1-D array; TypeError for a masked array (its mask would be ignored) or a
    bytes-like object (its bytes would be read as uint8 numbers)."""
    ma = sys.modules.get("numpy.ma")  # np.ma imports it (30-40 ms); no masked array exists before
    if ma is not None and isinstance(arr, ma.MaskedArray):
        raise TypeError(f"{what} must not be a masked array (fill or compress it first)")
    if isinstance(arr, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be a numeric array or sequence, not {type(arr).__name__} "
                        "(wrap a buffer with np.frombuffer and its dtype)")
    a = np.asarray(arr)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array, got {a.ndim}-D")
    return a


def _numeric_kind(a, what, kinds="iuf"):
    if a.dtype.kind not in kinds or a.dtype.kind == "b":
        names = {"i": "integer", "u": "unsigned integer", "f": "float"}
        allowed = " or ".join(names[k] for k in kinds)
        raise TypeError(f"{what} must be a numeric array ({allowed}); got dtype {a.dtype}")


def bulk_keys(keys) -> np.ndarray:
    """Keys for bulk_load: dtype exactly uint64, int64 or float64, no NaN."""
    a = _as_1d(keys, "keys")
    name = a.dtype.newbyteorder("=").name if a.dtype.kind in "iuf" else None
    if name not in KEY_DTYPES:
        raise TypeError(f"keys must have dtype uint64, int64 or float64; got {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.dtype(name))
    if name == "float64" and np.isnan(a).any():
        raise ValueError(f"keys contain NaN (first at position {int(np.argmax(np.isnan(a)))})")
    return a


def key_array(keys, dtype: str) -> np.ndarray:
    """Query keys converted exactly to the index's key dtype, as raw uint64.

    Any integer or float array is accepted when each key is exactly a key of
    the index's dtype, and refused whole (ValueError naming the first key
    that is not) otherwise: float16/float32 keys always are exactly float64;
    long double keys are accepted only when exactly representable as float64
    (a float64 index) or integral and in range (an integer index, where
    they are exact up to 2**64 with an 80-bit long double).  Masked arrays
    and bytes-like objects raise TypeError (_as_1d).
    """
    a = _as_1d(keys, "keys")
    if a.size == 0:
        return np.empty(0, dtype=np.uint64)
    _numeric_kind(a, "keys")
    if a.dtype.kind == "f" and a.dtype.itemsize < 8:
        a = a.astype(np.float64)  # exact: float64 holds every float16 and float32
    target = np.dtype(dtype)
    if a.dtype.newbyteorder("=") == target:
        out = np.ascontiguousarray(a, dtype=target)
        if dtype == "float64" and np.isnan(out).any():
            raise ValueError("keys contain NaN")
        return out.view(np.uint64)
    if dtype == "float64":
        if a.dtype.kind == "f":
            out = a.astype(np.float64)
            if np.isnan(out).any():
                raise ValueError("keys contain NaN")
            if a.dtype.itemsize > 8:  # long double: more precision than float64 holds
                bad = out.astype(a.dtype) != a
                if bad.any():
                    raise ValueError(f"key {a[int(np.argmax(bad))]!r} is not exactly representable as float64")
            return out.view(np.uint64)
        out = a.astype(np.float64)
        limit = 2.0**63 if a.dtype.kind == "i" else 2.0**64
        over = out >= limit  # rounded up past the integer type: not exact
        bad = over | (np.where(over, 0.0, out).astype(a.dtype) != a)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"key {a[i]} is not exactly representable as float64")
        return out.view(np.uint64)
    lo, hi = _RANGES[dtype]
    if a.dtype.kind == "f":
        if np.isnan(a).any():
            raise ValueError("keys contain NaN")
        bad = (a != np.floor(a)) | (a < lo) | (a >= float(hi) + 1)
        if bad.any():
            raise ValueError(f"key {a[int(np.argmax(bad))]!r} is not an integer in the range of {dtype}")
        return a.astype(target).view(np.uint64)
    return _checked_int_cast(a, target, "key").view(np.uint64)


def _checked_int_cast(a: np.ndarray, target: np.dtype, what: str) -> np.ndarray:
    """An integer array cast to target, refusing any value out of its range."""
    info = np.iinfo(target)
    if a.dtype.kind == "u":
        bad = a > info.max if np.iinfo(a.dtype).max > info.max else None
    else:
        bad = a < 0 if info.min == 0 else (a > info.max if np.iinfo(a.dtype).max > info.max else None)
    if bad is not None and bad.any():
        raise ValueError(f"{what} {a[int(np.argmax(bad))]} is out of range for {target}")
    return np.ascontiguousarray(a, dtype=target)


def value_array(values, dtype: str, n: int) -> np.ndarray:
    """Values converted exactly to the value dtype, as raw uint64, length n."""
    a = _as_1d(values, "values")
    if a.size != n:
        raise ValueError(f"keys and values differ in length ({n} != {a.size})")
    if a.size == 0:
        return np.empty(0, dtype=np.uint64)
    _numeric_kind(a, "values", kinds="iu")
    return _checked_int_cast(a, np.dtype(dtype), "value").view(np.uint64)


def object_array(values, n: int) -> np.ndarray:
    """values (a sequence, iterable or 1-D object array of any objects) as a
    contiguous 1-D object array of length n; an element that is itself a
    sequence (a tuple, a list) stays one element.  ValueError if the length
    is not n, TypeError for a bytes-like object or a multi-dimensional array."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"values must be a 1-D array, got {values.ndim}-D")
        a = np.ascontiguousarray(values, dtype=object)
    else:
        if isinstance(values, (bytes, bytearray, memoryview, str)):
            raise TypeError(f"values must be a sequence of objects, not {type(values).__name__}")
        values = values if isinstance(values, (list, tuple)) else list(values)
        a = np.fromiter(values, dtype=object, count=len(values))  # never broadcasts nested sequences
    if a.size != n:
        raise ValueError(f"keys and values differ in length ({n} != {a.size})")
    return a


def address(arr: np.ndarray) -> int:
    """The address of a contiguous array's first element (for nfl._index)."""
    return arr.__array_interface__["data"][0]
