"""Index: the Python face of the native AFLI tree.

Validation and dtype handling happen here (through nfl._keys).  Single-key
operations are those of the base class nfl._index.Core, C that converts the
key and runs the tree operation holding the GIL; every batch or ordered
operation is one cffi call into the C core, which releases the GIL.  Both take
the same tree's one readers-writer lock.
"""
import collections.abc
import itertools
import os

import numpy as np

from nfl import _index, _keys, views
from nfl._native import ffi, lib
from nfl.flow import Flow
from nfl.storage import snapshot
from nfl.storage.errors import SnapshotError

_ERRORS = {
    lib.NFL_ENOMEM: (MemoryError, "out of memory in the native index"),
    lib.NFL_EINVAL: (ValueError, "invalid argument to the native index"),
    lib.NFL_EORDER: (ValueError, "the flow is not monotone over these keys"),
}
_ITER_CHUNK = _index.CURSOR_CHUNK  # the largest read of an iterator, and of scan's pooled path
_FIRST_CHUNK = _index.CURSOR_FIRST  # an iterator's first read: a short irange needs one native call
_KEYS, _VALUES, _ITEMS = 0, 1, 2  # what a Cursor yields
_REPR_ITEMS = 5
_UNLIMITED = 2**62
_MISSING = object()
# The ordered-read path, looked up once: it runs per scan() call.
_DTYPES = {name: np.dtype(name) for name in ("uint64", "int64", "float64")}
_U64S = ffi.typeof("uint64_t[]")
_empty, _from_buffer, _nfl_range = np.empty, ffi.from_buffer, lib.nfl_range
_TO_END, _ALL = lib.NFL_TO_END, lib.NFL_FROM_START | lib.NFL_TO_END
_FROM_START, _LO_EXCLUSIVE, _HI_INCLUSIVE, _REVERSE = (
    lib.NFL_FROM_START, lib.NFL_LO_EXCLUSIVE, lib.NFL_HI_INCLUSIVE, lib.NFL_REVERSE)
# Keys per thread at which a batch call's default starts a second thread (see
# _threads).  A first guess: the break-even of `python -m bench.batch_threads
# breakeven` could not be measured on the shared 2-core machine it was built on.
_READ_KEYS_PER_THREAD = 16384
_WRITE_KEYS_PER_THREAD = 16384


def _depth_histogram(st) -> dict:
    """{depth: entries at that depth} (root = 1) of a nfl_stats; the deepest bin also holds deeper entries."""
    return {d + 1: int(st.depth_keys[d]) for d in range(lib.NFL_DEPTH_BINS) if st.depth_keys[d]}


def _same(value):
    return value


def _is_object_dtype(dtype):
    try:
        return _keys.dtype_name(dtype, _keys.INDEX_VALUE_DTYPES, "value") == "object"
    except TypeError:
        return False  # Index.__init__ raises it


def _holds_objects(values):
    """Whether bulk_load values, with no value_dtype given, ask for object values."""
    if values is None:
        return False
    if isinstance(values, np.ndarray):
        return values.dtype == object
    if isinstance(values, (list, tuple)):  # numbers keep the integer path (and its errors)
        return not all(isinstance(v, (int, float, np.number)) for v in values)
    return False


def _threads(threads, n, keys_per_thread):
    """The threads a batch of n keys runs on (the caller's one among them).

    threads: None picks one per keys_per_thread keys (the measured break-even
    of a thread: below it the extra thread's start and join cost more than
    its share of the work saves), at most the cores this process may run
    on; else an int in 1..NFL_MAX_THREADS (TypeError for another type,
    ValueError out of range).  Results never depend on it."""
    if threads is None:
        if n < 2 * keys_per_thread:
            return 1
        return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
                          n // keys_per_thread))
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise TypeError(f"threads must be None or an int; got {threads!r}")
    if not 1 <= threads <= lib.NFL_MAX_THREADS:
        raise ValueError(f"threads must be None or in 1..{lib.NFL_MAX_THREADS}; got {threads!r}")
    return int(threads)


def _check(rc):
    """Raises the Python exception for a negative native return code."""
    if rc < 0:
        exc, msg = _ERRORS.get(rc, (RuntimeError, f"native error {rc}"))
        raise exc(msg)
    return rc


def _u64(arr):
    return ffi.from_buffer("uint64_t[]", arr)


def _u8(arr):
    return ffi.from_buffer("uint8_t[]", arr)


def _u64_ptr(arr):
    """A uint64_t * to arr's data (the exact parameter type: cffi passes it fastest); arr must outlive it."""
    return ffi.cast("uint64_t *", ffi.from_buffer(arr))


class Index(_index.Core):
    """An ordered, in-memory map from 8-byte keys to 8-byte integer values.

    Keys are uint64, int64 or float64 (one dtype per index, compared exactly);
    values are int64 or uint64, or any Python objects with
    value_dtype="object" (an ObjectIndex: see there).  Build one with
    ``Index.bulk_load(keys)`` or start empty with ``Index(key_dtype=...)``.

    The single-key operations are C (nfl._index.Core) and share one
    contract: ``idx[k]``, ``idx[k] = v``, ``del idx[k]``, ``k in idx``,
    ``len(idx)``, get(key, default=None), insert(key, value) (False and no
    change if key exists), replace(key, value) (False and no change if it is
    absent), delete(key) (False if absent), pop(key[, default]) and
    setdefault(key, default=None).  A key the key dtype cannot hold exactly
    (negative or >= 2**64 for uint64, a non-integral float for an integer
    index, NaN) raises ValueError, a non-number TypeError; a value the value
    dtype cannot hold likewise; ``idx[k]``, ``del idx[k]`` and pop without a
    default raise KeyError for an absent key.  Cost: O(tree depth) each
    (about one cache miss a level); ``len`` is O(1).
    """

    def __new__(cls, key_dtype="uint64", value_dtype="int64", *, _flow=None):
        """An ObjectIndex for value_dtype "object" (when the class asked for is Index itself)."""
        if cls is Index and _is_object_dtype(value_dtype):
            cls = ObjectIndex
        return super().__new__(cls)

    def __init__(self, key_dtype="uint64", value_dtype="int64", *, _flow=None):
        """An empty index: key_dtype "uint64" | "int64" | "float64", value_dtype "int64" | "uint64".

        Raises TypeError naming the accepted dtypes for any other.  O(1).
        """
        self._key_dtype = _keys.dtype_name(key_dtype, tuple(_keys.KEY_DTYPES), "key")
        self._value_dtype = _keys.dtype_name(value_dtype, _keys.INDEX_VALUE_DTYPES, "value")
        if (self._value_dtype == "object") != isinstance(self, ObjectIndex):
            raise TypeError(f"{type(self).__name__} cannot hold values of dtype {self._value_dtype}")
        self._flow = _flow
        self._conflicts = (None, None)  # tail conflicts (raw, flow) at bulk load
        self._flow_reason = "no bulk load: no flow" if _flow is None else "a Flow given to the index"
        params = _flow.params() if _flow is not None else None
        ptr = lib.nfl_create(
            _keys.KEY_DTYPES[self._key_dtype],
            ffi.from_buffer("double[]", params) if params is not None else ffi.NULL,
            0 if params is None else len(params),
        )
        if ptr == ffi.NULL:
            raise ValueError("the native index refused its flow parameters")
        try:  # the base owns the tree from here: freed with this object
            self._attach(int(ffi.cast("uintptr_t", ptr)), _keys.KEY_DTYPES[self._key_dtype],
                         _keys.VALUE_KINDS[self._value_dtype])
        except BaseException:
            lib.nfl_free(ptr)
            raise
        self._ptr = ptr  # for the batch calls through cffi
        self._key = _keys.key_converter(self._key_dtype)
        self._value = _keys.value_converter(self._value_dtype) if self._value_dtype != "object" else _same
        self._scratch = []  # pooled ordered-read buffers (_scratch_for)

    # ---- building --------------------------------------------------------

    @classmethod
    def bulk_load(cls, keys: "np.typing.ArrayLike", values: "np.typing.ArrayLike | None" = None, *,
                  flow: "str | os.PathLike[str] | Flow" = "auto", bucket_size: "int | None" = None,
                  prefetch: bool = True, progress: bool = False, value_dtype: "str | None" = None) -> "Index":
        """An index over keys (any order) and values (default: positions).

        Args: keys, a 1-D uint64, int64 or float64 array (its dtype is the
        index's key dtype); values, an int64/uint64 array or a sequence of
        ints (an integer index), or any Python objects -- an object array, or
        a list or tuple that is not all ints -- for an object-valued index (an
        ObjectIndex, which keeps each object by reference); value_dtype
        "object" asks for object values whatever the values are, None infers
        it; flow, "auto" (the auto switch), "on", "off", a Flow, or a flow
        file; progress, one bar on stderr over the whole load (checking the
        keys, the flow's training and the switch's measurements, building the
        tree).
        Tuning knobs, for measurements (bench/): bucket_size, the entries a
        bucket holds, 1..NFL_MAX_BUCKET (None: from the tail conflict degree,
        as AFLI sizes it); prefetch=False turns off the prefetching of batch
        lookups (the plain descent, one key after the other).
        Raises ValueError for duplicate (named) or NaN keys, a length
        mismatch or a bad knob, TypeError for another dtype.  Cost:
        O(n log n) (the C core sorts), plus training when flow="auto" or
        "on" trains a flow.

        >>> import numpy as np
        >>> idx = Index.bulk_load(np.array([30, 10, 20], dtype=np.uint64), flow="off")
        >>> idx[20], idx.min_key(), len(idx)
        (2, 10, 3)
        >>> Index.bulk_load(np.array([1, 1], dtype=np.uint64))
        Traceback (most recent call last):
        ValueError: duplicate key in keys: 1
        """
        from nfl.flow.progress import Work
        from nfl.switch import choose_flow

        if bucket_size is not None and (type(bucket_size) is not int or not 1 <= bucket_size <= lib.NFL_MAX_BUCKET):
            raise ValueError(f"bucket_size must be None or an int in 1..{lib.NFL_MAX_BUCKET}; got {bucket_size!r}")
        if not isinstance(prefetch, bool):
            raise TypeError(f"prefetch must be True or False; got {prefetch!r}")

        with Work("bulk load", 3, progress) as work:
            keys = _keys.bulk_keys(keys)
            if value_dtype is not None:
                value_dtype = _keys.dtype_name(value_dtype, _keys.INDEX_VALUE_DTYPES, "value")
            if value_dtype == "object" or (value_dtype is None and _holds_objects(values)):
                value_dtype = "object"
                # a copy of our own: the tree stores its words while the GIL is released
                vals = np.array(_keys.object_array(values if values is not None else range(keys.size), keys.size),
                                dtype=object, copy=True)
            elif values is None:
                vals = np.arange(keys.size, dtype=np.int64).view(np.uint64)
                value_dtype = value_dtype or "int64"
            else:
                values = np.asarray(values)
                if value_dtype is None:
                    value_dtype = "uint64" if values.dtype.kind == "u" and values.ndim == 1 else "int64"
                vals = _keys.value_array(values, value_dtype, keys.size)
            work.step(f"choosing the flow for {keys.size:,} keys")
            choice = choose_flow(keys, flow)
            work.step("building the tree")
            idx = cls._from_entries(keys, vals, value_dtype, choice.flow, bucket_size or choice.bucket_size,
                                    (choice.tail_conflicts_raw, choice.tail_conflicts_flow))
            idx._flow_reason = choice.reason
            _check(lib.nfl_set_option(idx._ptr, lib.NFL_OPT_PREFETCH, int(prefetch)))
            work.step("done")
            return idx

    @classmethod
    def _from_entries(cls, keys, raw_values, value_dtype, flow, bucket_size, conflicts):
        """An index over keys (any order; the C core sorts) and raw uint64 values.

        The one place a tree is built; bulk_load and snapshot loading share it.
        """
        idx = cls(keys.dtype.name, value_dtype, _flow=flow)
        idx._conflicts = conflicts
        dup = ffi.new("uint64_t *")
        objects = value_dtype == "object"  # raw_values: an object array the caller keeps unchanged
        words = ffi.cast("uint64_t *", _keys.address(raw_values)) if objects else _u64(raw_values)
        rc = lib.nfl_bulk_load(idx._ptr, _u64(keys.view(np.uint64)), words, keys.size, bucket_size, dup)
        if rc == lib.NFL_EDUPLICATE:
            key = _keys.key_from_bits(dup[0], idx._key_dtype)
            raise ValueError(f"duplicate key in keys: {key!r}")
        _check(rc)
        if objects:  # stored: from here the index owns a reference to each
            idx._own(_keys.address(raw_values), keys.size)
        return idx

    def _export(self):
        """(keys, raw uint64 values) of every entry, ascending: what a snapshot holds."""
        keys, values = self._read_all(0, 0, lib.NFL_FROM_START | lib.NFL_TO_END, _UNLIMITED, hint=len(self) + 1)
        return keys, values.view(np.uint64)

    def _out_key(self, bits):
        return _keys.key_from_bits(bits, self._key_dtype)

    # ---- point operations ------------------------------------------------------
    # idx[k], idx[k] = v, del idx[k], k in idx, len(idx), get, insert, replace,
    # delete, pop and setdefault are those of the base, nfl._index.Core: C that
    # converts the key and value by the rules of nfl._keys and runs the tree
    # operation holding the GIL (see native/pyindex.c).

    # ---- batch operations ------------------------------------------------------

    def _key_array(self, keys):
        return _keys.key_array(keys, self._key_dtype)

    def get_many(self, keys, default=None, *, threads=None):
        """The values of a batch of keys, one native call.

        Without default: (values, found), values 0 where not found.  With a
        default (an int of the value dtype; ValueError/TypeError otherwise):
        one values array holding default where the key is absent.  threads:
        how many threads the C core splits the batch over (None: chosen by
        the batch's size and the cores; see _threads); the results are the
        same for any.  Raises ValueError naming the first key the key dtype
        cannot hold, TypeError for a non-numeric array, ValueError/TypeError
        for a bad threads.  Cost: O(m * depth) for m keys, GIL released."""
        if default is not None:
            self._value(default)  # checked before any work
        k = self._key_array(keys)
        threads = _threads(threads, k.size, _READ_KEYS_PER_THREAD)
        values = np.empty(k.size, dtype=self._value_dtype)
        found = np.empty(k.size, dtype=bool)
        lib.nfl_get_many_threads(self._ptr, _u64(k), k.size, _u64(values.view(np.uint64)), _u8(found), threads)
        if default is None:
            return values, found
        values[~found] = default
        return values

    def contains_many(self, keys, *, threads=None):
        """A bool array: which keys are present (threads: as get_many).

        Raises ValueError naming the first key the key dtype cannot hold, TypeError for a non-numeric array.  Cost: one native call, O(m * depth) for m keys, GIL released."""
        k = self._key_array(keys)
        threads = _threads(threads, k.size, _READ_KEYS_PER_THREAD)
        found = np.empty(k.size, dtype=bool)
        lib.nfl_get_many_threads(self._ptr, _u64(k), k.size, ffi.NULL, _u8(found), threads)
        return found

    def _put_many(self, keys, values, mode, threads=1):
        k = self._key_array(keys)
        threads = _threads(threads, k.size, _WRITE_KEYS_PER_THREAD)
        return self._put_bits(k, _keys.value_array(values, self._value_dtype, k.size), mode, threads)

    def _put_bits(self, k, v, mode, threads=1):
        """nfl_put_many_threads of raw uint64 key and value arrays; the existed array."""
        existed = np.empty(k.size, dtype=bool)
        self._writes += 1
        _check(lib.nfl_put_many_threads(self._ptr, _u64(k), _u64(v), k.size, mode, _u8(existed), threads))
        return existed

    # ---- mapping writes ----------------------------------------------------------

    def _pair_bits(self, other):
        """(keys, values) raw uint64 arrays of what update(other) writes, in order.

        other: an Index (read in one native call), a mapping (anything with
        keys(), as dict.update reads it) or an iterable of (key, value) pairs;
        each key and value is checked with the rules of a single-key write.
        TypeError for an element that is not a pair, ValueError for one of
        the wrong length."""
        if isinstance(other, Index):
            keys, values = other._export()
            k = _keys.key_array(keys, self._key_dtype)
            return k, _keys.value_array(values.view(other.value_dtype), self._value_dtype, k.size)
        keys, values = self._pair_lists(other)
        return np.array(keys, dtype=np.uint64), np.array(values, dtype=np.uint64)

    def _pair_lists(self, other):
        """(key bits, converted values) lists of the pairs of a mapping or an iterable of pairs."""
        if hasattr(other, "keys"):
            pairs = ((key, other[key]) for key in other.keys())
        else:
            pairs = other
        convert_key, convert_value = self._key, self._value
        keys, values = [], []
        for i, pair in enumerate(pairs):
            try:
                key, value = pair
            except TypeError:
                raise TypeError(f"update element #{i} ({type(pair).__name__}) is not a (key, value) pair") from None
            except ValueError:
                raise ValueError(f"update element #{i} has length {len(pair)}; 2 is required") from None
            keys.append(convert_key(key))
            values.append(convert_value(value))
        return keys, values

    def update(self, other=(), /):
        """Upserts every pair of other (a mapping or an iterable of (key, value) pairs), as dict.update.

        Every key and value is checked before any is written (a bad one
        raises and changes nothing); the writes are one batch call; a key
        repeated in other: the last value wins.  Cost: O(m) Python work for m
        pairs (one native read for an Index) plus the batch upsert."""
        k, v = self._pair_bits(other)
        if k.size:
            self._put_bits(k, v, lib.NFL_UPSERT)

    def popitem(self, last=True):
        """Removes and returns the (key, value) of the largest key (the smallest with last=False).

        Raises KeyError if the index is empty.  Cost: O(depth) (a native read and a delete)."""
        try:
            key, value = self.peekitem(-1 if last else 0)
        except IndexError:
            raise KeyError("popitem(): index is empty") from None
        self.delete(key)
        return key, value

    def clear(self):
        """Removes every entry (keeps the dtypes and the flow).  Raises nothing.  Cost: O(n) to free the tree."""
        empty = np.empty(0, dtype=np.uint64)
        self._writes += 1
        _check(lib.nfl_bulk_load(self._ptr, _u64(empty), _u64(empty), 0, self._bucket_size(),
                                 ffi.new("uint64_t *")))

    def copy(self):
        """An independent index with the same entries, dtypes and flow (shared: a Flow is immutable).

        Raises MemoryError when the native index cannot allocate.  Cost: O(n):
        one native read of every entry and a bulk load of them (no sort)."""
        keys, values = self._export()
        return type(self)._from_entries(keys, values, self._value_dtype, self._flow, self._bucket_size(),
                                        self._conflicts)

    def _bucket_size(self):
        st = ffi.new("nfl_stats *")
        lib.nfl_get_stats(self._ptr, st)
        return st.bucket_size

    def put_many(self, keys, values, *, threads=None):
        """Upserts a batch; with duplicate keys in the batch the last wins.  Returns None.

        keys and values: arrays (or sequences) of the same length.  Raises
        ValueError naming the first key the key dtype cannot hold, TypeError for a non-numeric array, ValueError/TypeError for values the value dtype cannot hold or
        a length mismatch (nothing is written then).  threads: as get_many;
        a write batch over threads looks its keys up in parallel and changes
        the tree on one thread, in the batch's order (native/parallel.c), so
        the results are the same for any.  Cost: one native call,
        O(m * depth) for m keys, GIL released."""
        self._put_many(keys, values, lib.NFL_UPSERT, threads)

    def insert_many(self, keys, values, *, threads=None):
        """Inserts a batch; a bool array, False where the key existed (its value is kept).

        Raises as put_many does; threads as put_many.  Cost: one native call, O(m * depth)."""
        return ~self._put_many(keys, values, lib.NFL_INSERT, threads)

    def delete_many(self, keys, *, threads=None):
        """Deletes a batch; a bool array, True where the key was there (threads: as put_many).

        Raises ValueError naming the first key the key dtype cannot hold, TypeError for a non-numeric array (nothing is deleted then).  Cost: one native call, O(m * depth)."""
        k = self._key_array(keys)
        threads = _threads(threads, k.size, _WRITE_KEYS_PER_THREAD)
        deleted = np.empty(k.size, dtype=bool)
        self._writes += 1
        _check(lib.nfl_delete_many_threads(self._ptr, _u64(k), k.size, _u8(deleted), threads))
        return deleted

    # ---- ordered operations ------------------------------------------------------

    def _range(self, lo_bits, hi_bits, flags, max_count):
        """One native ordered read: fresh (keys, values) arrays of the index's dtypes."""
        keys = _empty(max_count, _DTYPES[self._key_dtype])
        values = _empty(max_count, _DTYPES[self._value_dtype])
        n = _nfl_range(self._ptr, lo_bits, hi_bits, flags, _from_buffer(_U64S, keys),
                       _from_buffer(_U64S, values), max_count)
        return (keys, values) if n == max_count else (keys[:n], values[:n])

    def _lo(self, bound):
        """The bits of the smallest key >= bound, or None when no key can reach it."""
        try:
            return self._key(bound)  # the common case: a key of the dtype
        except ValueError:
            lo = _keys.ceil_key(bound, self._key_dtype)
        return None if lo is None else self._key(lo)

    def _read_all(self, lo_bits, hi_bits, flags, limit, hint=256):
        """Every entry in range (at most limit) from ONE native call.

        A single call runs under one read lock, so the result is a consistent
        snapshot even while other threads write; a full buffer is retried
        whole with twice the room, never continued (that could tear).
        """
        want = max(1, min(limit, hint))
        while True:
            keys, values = self._range(lo_bits, hi_bits, flags, want)
            if keys.size < want or want >= limit:
                return keys, values
            want = min(limit, want * 2)

    def _scratch_for(self, count):
        """A pooled (room, keys, values, keys_ptr, values_ptr) with room >= count, the caller's alone.

        Give it back with self._scratch.append(); a pool rather than a
        per-thread buffer, so neither threads nor a re-entrant call share one.
        Copying a short answer out of these beats wrapping fresh arrays for
        the native call (from_buffer).
        """
        try:
            scratch = self._scratch.pop()  # atomic: another thread may have taken the last one
            if scratch[0] >= count:
                return scratch
        except IndexError:
            pass
        keys, values = _empty(count, _DTYPES[self._key_dtype]), _empty(count, _DTYPES[self._value_dtype])
        return count, keys, values, _u64_ptr(keys), _u64_ptr(values)

    def _first(self, lo_bits, hi_bits, flags):
        """The first (key, value) of a native read, or None: one call, no arrays made."""
        scratch = self._scratch_for(1)
        n = _nfl_range(self._ptr, lo_bits, hi_bits, flags, scratch[3], scratch[4], 1)
        item = (self._out_key(scratch[3][0]), scratch[2][0].item()) if n else None
        self._scratch.append(scratch)
        return item

    def range(self, lo, hi):
        """Entries with lo <= key < hi, ascending, as (keys, values) arrays (empty if lo >= hi).

        lo and hi need not be keys of the dtype (bounds round inwards).
        Raises TypeError for a bound that is not a number.  Cost: one
        native call (one consistent read), O(log n + k) for k entries."""
        start = self._lo(lo)
        hi_key = _keys.ceil_key(hi, self._key_dtype)
        if start is None:
            return self._range(0, 0, 0, 0)
        flags = _TO_END if hi_key is None else 0
        hi_bits = 0 if hi_key is None else self._key(hi_key)
        return self._read_all(start, hi_bits, flags, _UNLIMITED)

    def scan(self, start, count):
        """The first count entries with key >= start, as (keys, values) arrays.

        start need not be a key of the dtype (2.5 in an integer index starts
        at 3).  Raises ValueError for a negative count, TypeError for a
        non-integral one or a non-number start.  Cost: one native call,
        O(log n + count).  (The common case -- an int count up to _ITER_CHUNK, a
        key of the dtype -- is inlined: one call into a pooled buffer.)
        """
        if type(count) is not int or not 0 < count <= _ITER_CHUNK:
            return self._scan_checked(start, count)
        try:
            lo = self._key(start)
        except ValueError:
            lo = self._lo(start)
            if lo is None:
                return self._range(0, 0, 0, 0)
        try:
            scratch = self._scratch.pop()  # _scratch_for, inlined
        except IndexError:
            scratch = None
        if scratch is None or scratch[0] < count:
            scratch = self._scratch_for(count)
        room, keys, values, keys_ptr, values_ptr = scratch
        n = _nfl_range(self._ptr, lo, 0, _TO_END, keys_ptr, values_ptr, count)
        result = (keys.copy(), values.copy()) if n == room else (keys[:n].copy(), values[:n].copy())
        self._scratch.append(scratch)
        return result

    def _scan_checked(self, start, count):
        """scan() for any other count: checked and converted; a long one read with room for all."""
        if type(count) is not int:
            count = _keys._integral(count, "count")
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if 0 < count <= _ITER_CHUNK:
            return self.scan(start, count)
        lo = self._lo(start)
        if lo is None or count == 0:
            return self._range(0, 0, 0, 0)
        return self._read_all(lo, 0, _TO_END, count, hint=len(self) + 1)

    def _bounds(self, minimum, maximum, inclusive):
        """(lo_bits, hi_bits, flags) of the native read of irange's bounds; None when no key can be in range.

        A bound the dtype cannot hold (2.5 for an integer index, -1 for
        uint64, 2**53 + 1 for float64) becomes the nearest key inside it."""
        try:
            lo_inclusive, hi_inclusive = inclusive
        except (TypeError, ValueError):
            raise TypeError(f"inclusive must be a pair of bools, got {inclusive!r}") from None
        flags = lo = hi = 0
        if minimum is None:
            flags |= _FROM_START
        else:
            try:
                lo = self._key(minimum)
                flags |= 0 if lo_inclusive else _LO_EXCLUSIVE
            except ValueError:
                key = _keys.ceil_key(minimum, self._key_dtype)
                if key is None:
                    return None
                lo = self._key(key)
        if maximum is None:
            flags |= _TO_END
        else:
            try:
                hi = self._key(maximum)
                flags |= _HI_INCLUSIVE if hi_inclusive else 0
            except ValueError:
                key = _keys.floor_key(maximum, self._key_dtype)
                if key is None:
                    return None
                hi, flags = self._key(key), flags | _HI_INCLUSIVE
        return lo, hi, flags

    def _nearest(self, key, inclusive, below):
        """The nearest key to key (at or past it when inclusive), below or above it; None if none."""
        if key is None:
            raise TypeError("key must be a number, not None")
        bounds = (self._bounds(None, key, (True, inclusive)) if below
                  else self._bounds(key, None, (inclusive, True)))
        if bounds is None:
            return None
        item = self._first(bounds[0], bounds[1], bounds[2] | (_REVERSE if below else 0))
        return None if item is None else item[0]

    def ceiling_key(self, key):
        """The smallest key >= key, or None.  key need not be a key of the dtype.

        Raises TypeError for None or a non-number.  Cost: O(log n) (one native read)."""
        return self._nearest(key, True, False)

    lower_bound = ceiling_key

    def higher_key(self, key):
        """The smallest key > key, or None.  Raises as ceiling_key.  Cost: O(log n) (one native read)."""
        return self._nearest(key, False, False)

    def floor_key(self, key):
        """The largest key <= key, or None.  Raises as ceiling_key.  Cost: O(log n) (one native read)."""
        return self._nearest(key, True, True)

    def lower_key(self, key):
        """The largest key < key, or None.  Raises as ceiling_key.  Cost: O(log n) (one native read)."""
        return self._nearest(key, False, True)

    def min_key(self):
        """The smallest key, or None when empty.  Raises nothing.  Cost: O(depth) (one native read)."""
        item = self._first(0, 0, _ALL)
        return None if item is None else item[0]

    def max_key(self):
        """The largest key, or None when empty.  Raises nothing.  Cost: O(depth) (one native read)."""
        scratch = self._scratch_for(1)
        key = self._out_key(scratch[3][0]) if lib.nfl_max(self._ptr, scratch[3], scratch[4]) else None
        self._scratch.append(scratch)
        return key

    def peekitem(self, index=-1):
        """The (key, value) at position index in key order (0: smallest, -1: largest), as SortedDict.

        IndexError when out of range (any index of an empty index).  Cost:
        O(log n) for 0 and -1, O(|index|) otherwise."""
        if type(index) is not int:
            index = _keys._integral(index, "index")
        if index in (0, -1):
            item = self._first(0, 0, _ALL | (_REVERSE if index else 0))
        else:
            count = index + 1 if index >= 0 else -index
            keys, values = self._read_all(0, 0, _ALL | (_REVERSE if index < 0 else 0), count, hint=count)
            item = (keys[-1].item(), values[-1:].tolist()[0]) if keys.size == count else None
        if item is None:
            raise IndexError("index out of range")
        return item

    def _irange(self, minimum, maximum, inclusive, reverse, what):
        """irange (what _KEYS) or irange_items (_ITEMS) for any bounds: those the dtype cannot hold
        become the nearest key inside them; TypeError or ValueError as _bounds raises."""
        bounds = self._bounds(minimum, maximum, inclusive)
        if bounds is None:
            return iter(())
        lo, hi, flags = bounds
        return self._cursor(lo, hi, flags | (_REVERSE if reverse else 0), what, False)

    # irange(minimum=None, maximum=None, inclusive=(True, True), reverse=False) and
    # irange_items(...) are those of the base, nfl._index.Core: a native Cursor when the
    # bounds are keys of the dtype, else _irange.

    def _iter_all(self, what, reverse=False):
        """A strict Cursor over every entry (RuntimeError at the next entry after a write, as dict's)."""
        return self._cursor(0, 0, _ALL | (_REVERSE if reverse else 0), what, True)

    def _iter_values(self, reverse=False):
        """The values in key order (descending with reverse): what values() iterates."""
        return self._iter_all(_VALUES, reverse)

    def _iter_items(self, reverse=False):
        """The (key, value) pairs in key order (descending with reverse): what items() iterates."""
        return self._iter_all(_ITEMS, reverse)

    def items(self):
        """A view of the (key, value) pairs in ascending key order (nfl.views.ItemsView).

        Raises nothing.  Cost: O(1); iterating it O(n), RuntimeError if the index changes meanwhile."""
        return views.ItemsView(self)

    def keys(self):
        """A view of the keys in ascending order (nfl.views.KeysView): set operations, O(log n) `in`.

        Raises nothing.  Cost: O(1); iterating it O(n), RuntimeError if the index changes meanwhile."""
        return views.KeysView(self)

    def values(self):
        """A view of the values in ascending key order (nfl.views.ValuesView).

        Raises nothing.  Cost: O(1); iterating it O(n), RuntimeError if the index changes meanwhile."""
        return views.ValuesView(self)

    def __iter__(self):
        """The keys in ascending order, lazily (a native Cursor, read in chunks).

        Raises RuntimeError if the index changes while it runs (as dict's
        iterators).  Cost: O(1) per key."""
        return self._cursor(0, 0, _ALL, _KEYS, True)

    def __reversed__(self):
        """The keys in descending order; as __iter__ (RuntimeError on a change, O(1) per key)."""
        return self._iter_all(_KEYS, reverse=True)

    def __eq__(self, other):
        """True when other is a Mapping with the same keys and values (dict semantics).

        NotImplemented for a non-Mapping; raises nothing.  Cost: O(n) (two
        native reads for another Index, one lookup per key otherwise)."""
        if not isinstance(other, collections.abc.Mapping):
            return NotImplemented
        if len(self) != len(other):
            return False
        if (isinstance(other, Index) and self._value_dtype != "object"
                and (other.key_dtype, other.value_dtype) == (self._key_dtype, self._value_dtype)):
            (k1, v1), (k2, v2) = self._export(), other._export()
            return bool(np.array_equal(k1, k2) and np.array_equal(v1, v2))
        for key, value in self._iter_items():
            try:
                if other[key] != value:
                    return False
            except KeyError:
                return False
        return True

    __hash__ = None  # mutable, as dict

    # ---- persistence (nfl.storage.snapshot) ---------------------------------------------

    def _to_record(self) -> snapshot.Record:
        """The index as plain data for the snapshot codec (one consistent read of the entries)."""
        keys, values = self._export()
        raw, flow = self._conflicts
        f = self._flow
        return snapshot.Record(self._key_dtype, self._value_dtype, keys, values,
                               None if f is None else f.params(), None if f is None else dict(f.meta),
                               self.stats()["bucket_size"], raw, flow, self._flow_reason)

    @classmethod
    def _from_record(cls, record: snapshot.Record, where="snapshot"):
        """The index a snapshot Record describes; SnapshotError if the native index refuses it."""
        try:
            flow = None if record.flow_params is None else Flow(record.flow_params, record.flow_meta)
            idx = cls._from_entries(record.keys, record.values, record.value_dtype, flow, record.bucket_size,
                                    (record.tail_conflicts_raw, record.tail_conflicts_flow))
        except (ValueError, RuntimeError) as exc:
            raise SnapshotError(f"{where}: snapshot contents refused by the index ({exc})") from None
        idx._flow_reason = record.flow_reason or "loaded from a snapshot that does not say why"
        return idx

    @classmethod
    def _from_snapshot(cls, data, where="snapshot"):
        """The index whose snapshot bytes are data (pickle's way back)."""
        return cls._from_record(snapshot.decode(data, where)[0], where)

    def save(self, path):
        """Writes an atomic, checksummed snapshot: the old file or the new, never a torn one.

        path: a file name (str or os.PathLike).  Object values are pickled
        (protocol 5); pickle's error for a value it cannot pickle, before
        anything is written; OSError from the file system.  Cost: O(n): one
        read of every entry, one write and fsync of the file and its directory."""
        snapshot.save(self._to_record(), path)

    @classmethod
    def load(cls, path):
        """Reads a snapshot written by save(); nfl.SnapshotError if it is not valid.

        A snapshot of object values holds them pickled: loading it runs
        pickle (after the file's checksum is verified), so load only files
        from a trusted source, as with pickle itself.  Raises
        nfl.SnapshotNotFoundError (a FileNotFoundError) for a missing file.
        Cost: O(n): the file is read and checked, and the entries bulk loaded
        in key order (no sort)."""
        return cls._from_record(snapshot.load(path)[0], os.fspath(path))

    def __reduce__(self):
        return _from_snapshot_bytes, (b"".join(snapshot.encode(self._to_record())),)

    # ---- introspection ------------------------------------------------------------

    @property
    def key_dtype(self) -> str:
        """The key dtype's name: "uint64", "int64" or "float64"."""
        return self._key_dtype

    @property
    def value_dtype(self) -> str:
        """The value dtype's name: "int64" or "uint64"."""
        return self._value_dtype

    @property
    def flow(self):
        """The Flow in use, or None."""
        return self._flow

    def stats(self) -> dict:
        """Structure and memory figures of the index (see api.md): a new dict.

        Raises nothing.  Cost: O(1) (the C core keeps the counts)."""
        st = ffi.new("nfl_stats *")
        lib.nfl_get_stats(self._ptr, st)
        return {
            "size": st.size,
            "key_dtype": self._key_dtype,
            "value_dtype": self._value_dtype,
            "flow_enabled": bool(st.flow_enabled),
            "model_nodes": st.model_nodes,
            "dense_nodes": st.dense_nodes,
            "buckets": st.buckets,
            "max_depth": st.max_depth,
            "avg_depth": st.avg_depth,
            "depth_histogram": _depth_histogram(st),
            "dense_keys": st.dense_keys,
            "max_dense_node": st.max_dense,
            "tail_conflicts_raw": self._conflicts[0],
            "tail_conflicts_flow": self._conflicts[1],
            "bucket_size": st.bucket_size,
            "memory_bytes": self.memory_usage(),
            "flow_reason": self._flow_reason,
        }

    def _check(self):
        """Checks every structural invariant of the native tree (nfl_check); raises AssertionError
        naming the first violation.  Cost: O(n * depth): for tests."""
        msg = ffi.new("char[]", lib.NFL_CHECK_MESSAGE)
        if lib.nfl_check(self._ptr, msg, lib.NFL_CHECK_MESSAGE) != 0:
            raise AssertionError(f"nfl index invariant broken: {ffi.string(msg).decode()}")

    def memory_usage(self) -> int:
        """Bytes held by the native structure (slots, buckets, nodes; not the Python objects).

        Raises nothing.  Cost: O(1)."""
        return lib.nfl_memory_usage(self._ptr)

    def __repr__(self):
        flow = "flow" if self._flow is not None else "no flow"
        first = list(itertools.islice(self._iter_items(), _REPR_ITEMS))
        shown = ", ".join(f"{k!r}: {v!r}" for k, v in first)
        more = ", ..." if len(self) > len(first) else ""
        return f"<nfl.Index {self._key_dtype}->{self._value_dtype}, {len(self)} keys, {flow}: {{{shown}{more}}}>"


class ObjectIndex(Index):
    """An Index whose values are any Python objects, kept by reference.

    Made by ``Index(key_dtype, value_dtype="object")`` or by bulk_load with
    object values.  The tree's 8-byte value is the object's address and the
    index owns one reference to it (dropped on overwrite, delete, clear and
    when the index goes); ``idx[k] is v`` for the v stored.  Every operation
    that reads or writes values runs in nfl._index holding the GIL (batch
    operations too: a loop of single-key operations in C), so no reader sees
    a value freed under it.  Batch and ordered reads return keys as a numpy
    array and values as an object array.  The garbage collector sees the
    values (a value that refers back to the index is collected).
    """

    def _export(self):
        """(keys, values object array) of every entry, ascending."""
        return self._read_all(0, 0, _ALL, _UNLIMITED, hint=len(self) + 1)

    def get_many(self, keys, default=None, *, threads=None):
        """The values of a batch of keys, as an object array.

        Without default: (values, found), values None where not found; with
        one: the values array holding default where the key is absent.
        threads is checked as Index.get_many's, but object values are read
        on one thread.  Raises ValueError naming the first key the key dtype cannot hold, TypeError for a non-numeric array.  Cost: one native call, the fused prefetched batch descent of the int64 path (O(m * depth) for m keys), holding the GIL."""
        k = self._key_array(keys)
        _threads(threads, k.size, _READ_KEYS_PER_THREAD)
        values = np.empty(k.size, dtype=object)
        if default is not None:
            values.fill(default)
        found = np.empty(k.size, dtype=bool)
        self._get_objects(_keys.address(k), _keys.address(values), _keys.address(found), k.size)
        return (values, found) if default is None else values

    def _put_many(self, keys, values, mode, threads=1):
        k = self._key_array(keys)
        _threads(threads, k.size, _WRITE_KEYS_PER_THREAD)  # checked; objects are written on one thread
        return self._put_bits(k, _keys.object_array(values, k.size), mode)

    def _put_bits(self, k, v, mode, threads=1):
        """Writes raw keys k with the objects of object array v, in order, on one thread; the existed array."""
        existed = np.empty(k.size, dtype=bool)
        self._put_objects(_keys.address(k), _keys.address(v), _keys.address(existed), k.size, mode)
        return existed

    def _pair_bits(self, other):
        """(raw keys, object array of values) of what update(other) writes, in order."""
        if isinstance(other, Index):
            keys, values = other._export()
            if other.value_dtype != "object":
                values = values.view(other.value_dtype).tolist()
            k = _keys.key_array(keys, self._key_dtype)
            return k, _keys.object_array(values, k.size)
        keys, values = self._pair_lists(other)
        return np.array(keys, dtype=np.uint64), _keys.object_array(values, len(values))

    def delete_many(self, keys, *, threads=None):
        """Deletes a batch on one thread (threads is checked only); a bool array, True where the key was there (its reference is dropped).

        Raises ValueError naming the first key the key dtype cannot hold,
        TypeError for a non-numeric array.  Cost: O(m * depth), holding the GIL."""
        k = self._key_array(keys)
        _threads(threads, k.size, _WRITE_KEYS_PER_THREAD)
        deleted = np.empty(k.size, dtype=bool)
        self._delete_objects(_keys.address(k), _keys.address(deleted), k.size)
        return deleted

    def clear(self):
        """Removes every entry, then drops the index's references to the values.

        Raises nothing (a value's __del__ may run).  Cost: O(n)."""
        self._clear_objects()

    def _range(self, lo_bits, hi_bits, flags, max_count):
        """One ordered read, holding the GIL: fresh (keys array, values object array)."""
        keys = _empty(max_count, _DTYPES[self._key_dtype])
        values = _empty(max_count, dtype=object)  # None-filled
        n = self._read_objects(lo_bits, hi_bits, flags, _keys.address(keys), _keys.address(values), max_count)
        return (keys, values) if n == max_count else (keys[:n], values[:n].copy())

    def scan(self, start, count):
        """The first count entries with key >= start, as (keys array, values object array).

        Raises ValueError for a negative count, TypeError for a non-integral
        one or a non-number start.  Cost: O(log n + count), holding the GIL."""
        if type(count) is not int:
            count = _keys._integral(count, "count")
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        lo = self._lo(start)
        if lo is None or count == 0:
            return self._range(0, 0, 0, 0)
        return self._read_all(lo, 0, _TO_END, count, hint=count)

    def _first(self, lo_bits, hi_bits, flags):
        keys, values = self._range(lo_bits, hi_bits, flags, 1)
        return (keys[0].item(), values[0]) if keys.size else None

    def max_key(self):
        item = self._first(0, 0, _ALL | _REVERSE)
        return None if item is None else item[0]


def _from_snapshot_bytes(data):
    """An Index from its snapshot bytes: what a pickled Index stores."""
    return Index._from_snapshot(data)


collections.abc.MutableMapping.register(Index)
