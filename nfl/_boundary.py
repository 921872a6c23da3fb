"""The one boundary between Python and the C core: the only importer of nfl._native.

Every other module of nfl reaches native/nfl.h through the functions and
constants here (the single-key extension type nfl._index is a module of its
own).  A wrapper takes numpy arrays and Python ints, checks what C cannot (the
length, element size and contiguity of each buffer: ValueError), turns a
negative return code into the exception api.md names (MemoryError,
ValueError) and returns numpy arrays or Python values.  cffi releases the GIL
for the length of every C call made here.

A tree is the opaque handle create() returns (an ``nfl_index *``): the caller
keeps it and frees it once (nfl._index.Core frees it with its Index).  A flow
is the handle flow_create() returns, freed when it becomes garbage.

Two entry points are the C functions themselves, unchecked: the ordered reads
of a few entries (scan, min_key, max_key, ceiling_key, ...) run them once per
call, and a Python layer would cost about as much as the read.  They are
read_range_into and read_max_into, on buffers that pointer() makes.
"""
import functools
from typing import NamedTuple, Optional

import numpy as np

from nfl._native import ffi, lib

# ---- constants of native/nfl.h ---------------------------------------------

KEY_TYPES = {"uint64": lib.NFL_KEY_UINT64, "int64": lib.NFL_KEY_INT64, "float64": lib.NFL_KEY_FLOAT64}
UPSERT, INSERT, UPDATE = lib.NFL_UPSERT, lib.NFL_INSERT, lib.NFL_UPDATE  # write modes of put_many
FROM_START, LO_EXCLUSIVE, TO_END, HI_INCLUSIVE, REVERSE = (  # flags of a range read
    lib.NFL_FROM_START, lib.NFL_LO_EXCLUSIVE, lib.NFL_TO_END, lib.NFL_HI_INCLUSIVE, lib.NFL_REVERSE)
MAX_BUCKET = lib.NFL_MAX_BUCKET  # a bucket's entries, at most
MAX_THREADS = lib.NFL_MAX_THREADS  # threads of one batch call, at most
FLOW_MAX_BINS = lib.NFL_FLOW_MAX_BINS  # bins of a spline flow, at most

_ERRORS = {
    lib.NFL_ENOMEM: (MemoryError, "out of memory in the native index"),
    lib.NFL_EINVAL: (ValueError, "invalid argument to the native index"),
    lib.NFL_EORDER: (ValueError, "the flow is not monotone over these keys"),
}
_from_buffer, _NULL = ffi.from_buffer, ffi.NULL
_U64S, _U8S, _F64S, _U32S = (ffi.typeof(t) for t in ("uint64_t[]", "uint8_t[]", "double[]", "uint32_t[]"))


def _check(rc: int) -> int:
    """rc when >= 0, else the exception of the native return code (RuntimeError for an unknown one)."""
    if rc < 0:
        exc, msg = _ERRORS.get(rc, (RuntimeError, f"native error {rc}"))
        raise exc(msg)
    return rc


def _buffer(ctype, size, arr: np.ndarray, n: int, what: str):
    """cffi's view of arr's data as ctype (elements of size bytes).

    ValueError unless arr has n elements of that size and is C-contiguous
    (from_buffer checks that)."""
    if arr.size != n or arr.itemsize != size:
        raise ValueError(f"{what}: need {n} elements of {size} bytes; got {arr.size} of {arr.itemsize} bytes")
    return _from_buffer(ctype, arr)


# (arr, n, what) -> _buffer of n 8-byte words (uint64, int64 or float64), of n doubles, of n bools;
# partials, so a wrapper's buffer costs one Python frame
_words, _doubles, _flags = (functools.partial(_buffer, ctype, size)
                            for ctype, size in ((_U64S, 8), (_F64S, 8), (_U8S, 1)))


def _address(arr: np.ndarray) -> int:
    return arr.__array_interface__["data"][0]


# ---- the tree ----------------------------------------------------------------


def core_entry_points() -> tuple:
    """The addresses of nfl_point, nfl_free, nfl_range, nfl_version and nfl_get_many: what nfl._index._bind takes.

    The single-key extension calls the C core through them, so both modules
    run the one tree code.  Raises nothing.  O(1)."""
    return tuple(int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))
                 for name in ("nfl_point", "nfl_free", "nfl_range", "nfl_version", "nfl_get_many"))


def create(key_type: int, flow_params: Optional[np.ndarray]):
    """A new empty tree (nfl_create): the caller frees it once, with free() or through nfl._index.Core.

    key_type: a value of KEY_TYPES; flow_params: the flow's parameter vector
    (float64, nfl.flow.layout) or None for no flow (the C core copies it).
    Raises ValueError when the C core refuses them (or cannot allocate).
    Cost: O(1), plus the flow's tables."""
    if flow_params is None:
        ptr = lib.nfl_create(key_type, _NULL, 0)
    else:
        ptr = lib.nfl_create(key_type, _doubles(flow_params, flow_params.size, "flow parameters"),
                             flow_params.size)
    if ptr == _NULL:
        raise ValueError("the native index refused its flow parameters")
    return ptr


def free(tree) -> None:
    """Frees a tree that nothing else owns (nfl_free).  Raises nothing.  O(n)."""
    lib.nfl_free(tree)


def address(tree) -> int:
    """The tree's address as an int (what nfl._index.Core._attach takes).  Raises nothing.  O(1)."""
    return int(ffi.cast("uintptr_t", tree))


def set_prefetch(tree, on: bool) -> None:
    """Turns the prefetching of batch lookups on or off (NFL_OPT_PREFETCH).  Raises nothing.  O(1)."""
    _check(lib.nfl_set_option(tree, lib.NFL_OPT_PREFETCH, int(on)))


def bulk_load(tree, keys: np.ndarray, values: np.ndarray, bucket_size: int) -> None:
    """Replaces the tree's contents with keys and values (nfl_bulk_load); on failure the tree is unchanged.

    keys: a contiguous array of one key dtype (uint64, int64 or float64), any
    order; values: an 8-byte array of the same length (the raw words), or an
    object array whose element addresses become the words (the caller then
    owns them for the tree: nfl._index.Core._own); bucket_size:
    1..MAX_BUCKET.  Raises ValueError naming the first duplicate key (as a
    key of keys' dtype) or for a flow not monotone over the keys or a bad
    argument, MemoryError out of memory.  Cost: O(n log n) (the C core
    sorts; O(n) for sorted keys), GIL released."""
    n = keys.size
    if values.dtype == object:
        if values.size != n or not values.flags.c_contiguous:
            raise ValueError(f"values: need a contiguous object array of {n} elements")
        words = ffi.cast("uint64_t *", _address(values))
    else:
        words = _words(values, n, "values")
    dup = ffi.new("uint64_t *")
    rc = lib.nfl_bulk_load(tree, _words(keys, n, "keys"), words, n, bucket_size, dup)
    if rc == lib.NFL_EDUPLICATE:
        key = np.array([dup[0]], dtype=np.uint64).view(keys.dtype)[0].item()
        raise ValueError(f"duplicate key in keys: {key!r}")
    _check(rc)


def get_many(tree, keys: np.ndarray, values: Optional[np.ndarray], found: np.ndarray, threads: int) -> None:
    """Looks up a batch (nfl_get_many_threads): fills values[i] and found[i] for keys[i].

    keys: raw uint64 keys (nfl._keys.key_array); values: an 8-byte array of
    the same length to receive the words (left as it was where not found),
    or None for a contains test; found: a bool array of the same length;
    threads: 1..MAX_THREADS.  Raises ValueError for a buffer of the wrong
    size.  Cost: O(m * depth) for m keys, GIL released."""
    n = keys.size
    out = _NULL if values is None else _words(values, n, "values")
    lib.nfl_get_many_threads(tree, _words(keys, n, "keys"), n, out, _flags(found, n, "found"), threads)


def put_many(tree, keys: np.ndarray, values: np.ndarray, mode: int, existed: np.ndarray, threads: int) -> None:
    """Writes a batch in order, the last write of a key winning (nfl_put_many_threads).

    keys, values: raw uint64 arrays of the same length; mode: UPSERT, INSERT
    or UPDATE; existed: a bool array of that length, set True where the key
    was there before; threads: 1..MAX_THREADS.  Raises MemoryError out of
    memory (then nothing changed, or a failure part way has applied some
    later ops on present keys, as nfl.h says), ValueError for a buffer of the
    wrong size.  Cost: O(m * depth) for m keys, GIL released."""
    n = keys.size
    _check(lib.nfl_put_many_threads(tree, _words(keys, n, "keys"), _words(values, n, "values"), n, mode,
                                    _flags(existed, n, "existed"), threads))


def delete_many(tree, keys: np.ndarray, deleted: np.ndarray, threads: int) -> None:
    """Deletes a batch in order (nfl_delete_many_threads); deleted[i] True where keys[i] was there.

    keys: raw uint64 keys; deleted: a bool array of the same length;
    threads: 1..MAX_THREADS.  Raises MemoryError out of memory (nothing
    changed), ValueError for a buffer of the wrong size.  Cost: O(m * depth)
    for m keys, GIL released."""
    n = keys.size
    _check(lib.nfl_delete_many_threads(tree, _words(keys, n, "keys"), n, _flags(deleted, n, "deleted"), threads))


def read_range(tree, lo: int, hi: int, flags: int, keys: np.ndarray, values: np.ndarray) -> int:
    """One ordered read (nfl_range) into keys and values, at most their length; the count read.

    lo, hi: raw key bits of the bounds; flags: FROM_START, LO_EXCLUSIVE,
    TO_END, HI_INCLUSIVE, REVERSE or'ed (nfl.h says what each means); keys,
    values: 8-byte arrays of the same length.  The read is one consistent
    snapshot (one read lock).  Raises ValueError for buffers of the wrong
    size.  Cost: O(log n + k) for k entries read, GIL released."""
    n = keys.size
    if values.size != n or keys.itemsize != 8 or values.itemsize != 8:  # _words' check, inlined: a per-call path
        raise ValueError(f"keys, values: need two arrays of 8-byte elements of one length; got {n} of "
                         f"{keys.itemsize} bytes, {values.size} of {values.itemsize} bytes")
    return lib.nfl_range(tree, lo, hi, flags, _from_buffer(_U64S, keys), _from_buffer(_U64S, values), n)


def pointer(arr: np.ndarray):
    """A ``uint64_t *`` to the data of arr (contiguous, 8-byte elements) for the *_into calls.

    Keep arr alive while the pointer is used: the pointer does not.  Raises
    ValueError for another array.  O(1)."""
    return ffi.cast("uint64_t *", _words(arr, arr.size, "buffer"))


# read_range_into(tree, lo, hi, flags, keys_ptr, values_ptr, max) -> count: read_range on two
# pointer()s of at least max elements each, unchecked (nfl_range itself).
read_range_into = lib.nfl_range
# read_max_into(tree, key_ptr, value_ptr) -> 1 with the largest entry written there, 0 when empty (nfl_max).
read_max_into = lib.nfl_max


class Stats(NamedTuple):
    """The C core's counts of a tree (nfl_stats)."""

    size: int
    model_nodes: int
    dense_nodes: int
    buckets: int
    max_depth: int
    avg_depth: float  # mean depth of the entries, root = 1
    dense_keys: int  # entries held in dense nodes
    max_dense: int  # entries of the largest dense node
    depth_keys: tuple  # entries at depth d + 1 for each d; the last one: deeper too
    bucket_size: int
    flow_enabled: bool


def stats(tree) -> Stats:
    """The tree's structure counts (nfl_get_stats).  Raises nothing.  Cost: O(1) (the C core keeps them)."""
    st = ffi.new("nfl_stats *")
    lib.nfl_get_stats(tree, st)
    return Stats(st.size, st.model_nodes, st.dense_nodes, st.buckets, st.max_depth, st.avg_depth, st.dense_keys,
                 st.max_dense, tuple(st.depth_keys), st.bucket_size, bool(st.flow_enabled))


def memory_usage(tree) -> int:
    """Bytes the tree holds (slots, buckets, nodes, flow tables).  Raises nothing.  O(1)."""
    return lib.nfl_memory_usage(tree)


def check(tree) -> Optional[str]:
    """None when every structural invariant of the tree holds (nfl_check), else the first violation.

    Raises nothing.  Cost: O(n * depth), allocates nothing in C: for tests."""
    msg = ffi.new("char[]", lib.NFL_CHECK_MESSAGE)
    return ffi.string(msg).decode() if lib.nfl_check(tree, msg, lib.NFL_CHECK_MESSAGE) != 0 else None


# ---- the flow ----------------------------------------------------------------


def flow_create(params: np.ndarray):
    """The compiled transform of a flow's parameter vector (nfl_flow_create), freed when garbage.

    params: contiguous float64 (nfl.flow.layout; the C core copies it).
    Raises ValueError when the C core refuses it.  Cost: O(bins)."""
    ptr = lib.nfl_flow_create(_doubles(params, params.size, "flow parameters"), params.size)
    if ptr == _NULL:
        raise ValueError("the native flow refused these parameters")
    return ffi.gc(ptr, lib.nfl_flow_free)


def flow_transform(flow, x: np.ndarray) -> np.ndarray:
    """z = f(x) (nfl_flow_transform): a new float64 array, finite and monotone non-decreasing in x.

    x: contiguous float64.  Raises ValueError for another array.  Cost:
    O(len(x)), GIL released."""
    z = np.empty_like(x)
    lib.nfl_flow_transform(flow, _doubles(x, x.size, "x"), _doubles(z, x.size, "z"), x.size)
    return z


def flow_table_bytes(flow) -> int:
    """Bytes of the tables the transform reads (knots padded for the lifting, pieces, radix cells).  O(1)."""
    return lib.nfl_flow_table_bytes(flow)


def flow_lifting_step(flow) -> int:
    """The first step of the bin search's binary lifting (0: none): log2(step) + 1 probes.  O(1)."""
    return lib.nfl_flow_lifting_step(flow)


# ---- conflicts ---------------------------------------------------------------


def slot_counts(keys: np.ndarray, flow, amplification: float) -> tuple:
    """(per_slot, pieces) of the model node the C core fits over keys (nfl_slot_counts).

    keys: a contiguous array of a key dtype (uint64, int64 or float64), any
    order; flow: a flow_create() handle or None; amplification: slots per
    key, <= 0 for the tree's own.  per_slot: uint32 keys per slot (empty ones
    too); pieces: whether the C core fits its pieces model.  Raises
    MemoryError out of memory, KeyError for another key dtype.  Cost: O(n)
    time, 4 bytes per slot, GIL released."""
    key_type = KEY_TYPES[keys.dtype.name]
    counts = np.empty(lib.nfl_model_capacity(keys.size, amplification), dtype=np.uint32)
    rc = lib.nfl_slot_counts(key_type, _NULL if flow is None else flow, _words(keys, keys.size, "keys"), keys.size,
                             amplification, _buffer(_U32S, 4, counts, counts.size, "per_slot"))
    if rc == lib.NFL_ENOMEM:
        raise MemoryError("out of memory counting slots")
    return counts, rc == lib.NFL_SLOTS_PIECES
