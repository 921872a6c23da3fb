"""Index: the Python face of the native AFLI tree.

Validation and dtype handling happen here (through nfl._keys); every tree
operation, single or batch, is one call into the C core, which releases the
GIL and takes the index's readers-writer lock.
"""
import threading

import numpy as np

from nfl import _keys
from nfl._native import ffi, lib

_ERRORS = {
    lib.NFL_ENOMEM: (MemoryError, "out of memory in the native index"),
    lib.NFL_EINVAL: (ValueError, "invalid argument to the native index"),
    lib.NFL_EORDER: (RuntimeError, "the flow is not monotone over these keys"),
}
_ITER_CHUNK = 4096
_UNLIMITED = 2**62
_TWO64 = 2**64
_MISSING = object()
# The ordered-read path, looked up once: it runs per scan() call.
_DTYPES = {name: np.dtype(name) for name in ("uint64", "int64", "float64")}
_U64S = ffi.typeof("uint64_t[]")
_empty, _from_buffer, _nfl_range = np.empty, ffi.from_buffer, lib.nfl_range
_TO_END, _ALL = lib.NFL_TO_END, lib.NFL_FROM_START | lib.NFL_TO_END


def _depth_histogram(st) -> dict:
    """{depth: entries at that depth} (root = 1) of a nfl_stats; the deepest bin also holds deeper entries."""
    return {d + 1: int(st.depth_keys[d]) for d in range(lib.NFL_DEPTH_BINS) if st.depth_keys[d]}


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


class Index:
    """An ordered, in-memory map from 8-byte keys to 8-byte integer values.

    Keys are uint64, int64 or float64 (one dtype per index, compared exactly);
    values are int64 or uint64.  Build one with ``Index.bulk_load(keys)`` or
    start empty with ``Index(key_dtype=...)``.
    """

    def __init__(self, key_dtype="uint64", value_dtype="int64", *, _flow=None):
        self._key_dtype = _keys.dtype_name(key_dtype, tuple(_keys.KEY_DTYPES), "key")
        self._value_dtype = _keys.dtype_name(value_dtype, _keys.VALUE_DTYPES, "value")
        self._flow = _flow
        self._conflicts = (None, None)  # tail conflicts (raw, flow) at bulk load
        params = _flow.params() if _flow is not None else None
        ptr = lib.nfl_create(
            _keys.KEY_DTYPES[self._key_dtype],
            ffi.from_buffer("double[]", params) if params is not None else ffi.NULL,
            0 if params is None else len(params),
        )
        if ptr == ffi.NULL:
            raise ValueError("the native index refused its flow parameters")
        self._ptr = ffi.gc(ptr, lib.nfl_free)
        self._writes = 0  # bumped by every write call, for iterators
        self._key = _keys.key_converter(self._key_dtype)
        self._value = _keys.value_converter(self._value_dtype)
        self._signed_values = self._value_dtype == "int64"
        self._cells = threading.local()  # a native out-cell per thread (calls release the GIL)
        self._scratch = []  # pooled ordered-read buffers (_scratch_for)

    # ---- building --------------------------------------------------------

    @classmethod
    def bulk_load(cls, keys, values=None, *, flow="auto"):
        """An index over keys (any order) and values (default: positions).

        flow: "auto" (the auto switch), "on", "off", a Flow, or a flow file.
        """
        from nfl.switch import choose_flow

        keys = _keys.bulk_keys(keys)
        value_dtype = "int64"
        if values is None:
            vals = np.arange(keys.size, dtype=np.int64).view(np.uint64)
        else:
            values = np.asarray(values)
            if values.dtype.kind == "u" and values.ndim == 1:
                value_dtype = "uint64"
            vals = _keys.value_array(values, value_dtype, keys.size)
        choice = choose_flow(keys, flow)
        return cls._from_entries(keys, vals, value_dtype, choice.flow, choice.bucket_size,
                                 (choice.tail_conflicts_raw, choice.tail_conflicts_flow))

    @classmethod
    def _from_entries(cls, keys, raw_values, value_dtype, flow, bucket_size, conflicts):
        """An index over keys (any order; the C core sorts) and raw uint64 values.

        The one place a tree is built; bulk_load and snapshot loading share it.
        """
        idx = cls(keys.dtype.name, value_dtype, _flow=flow)
        idx._conflicts = conflicts
        dup = ffi.new("uint64_t *")
        rc = lib.nfl_bulk_load(idx._ptr, _u64(keys.view(np.uint64)), _u64(raw_values), keys.size,
                               bucket_size, dup)
        if rc == lib.NFL_EDUPLICATE:
            key = _keys.key_from_bits(dup[0], idx._key_dtype)
            raise ValueError(f"duplicate key in keys: {key!r}")
        _check(rc)
        return idx

    def _export(self):
        """(keys, raw uint64 values) of every entry, ascending: what a snapshot holds."""
        keys, values = self._read_all(0, 0, lib.NFL_FROM_START | lib.NFL_TO_END, _UNLIMITED, hint=len(self) + 1)
        return keys, values.view(np.uint64)

    # ---- scalar helpers ------------------------------------------------------

    def _cell(self):
        """This thread's uint64 out-cell for single-key native calls."""
        try:
            return self._cells.cell
        except AttributeError:
            cell = self._cells.cell = ffi.new("uint64_t *")
            return cell

    def _out_key(self, bits):
        return _keys.key_from_bits(bits, self._key_dtype)

    def _put(self, key, value, mode):
        k, v = self._key(key), self._value(value)
        self._writes += 1
        return _check(lib.nfl_put(self._ptr, k, v, mode))

    # ---- point operations ------------------------------------------------------

    def get(self, key, default=None):
        """The value of key, or default."""
        out = self._cell()
        if lib.nfl_get(self._ptr, self._key(key), out):
            v = out[0]
            return v - _TWO64 if v >> 63 and self._signed_values else v
        return default

    def __getitem__(self, key):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value):
        self._put(key, value, lib.NFL_UPSERT)

    def insert(self, key, value) -> bool:
        """Adds key; False (and no change) if it is already there."""
        return self._put(key, value, lib.NFL_INSERT) == 0

    def update(self, key, value) -> bool:
        """Changes the value of an existing key; False if it is absent."""
        return self._put(key, value, lib.NFL_UPDATE) == 1

    def delete(self, key) -> bool:
        """Removes key; False if it was absent."""
        k = self._key(key)
        self._writes += 1
        return lib.nfl_delete(self._ptr, k) == 1

    def __delitem__(self, key):
        if not self.delete(key):
            raise KeyError(key)

    def __contains__(self, key):
        try:
            k = self._key(key)
        except (TypeError, ValueError):
            return False
        return lib.nfl_get(self._ptr, k, self._cell()) == 1

    def __len__(self):
        return lib.nfl_size(self._ptr)

    # ---- batch operations ------------------------------------------------------

    def _key_array(self, keys):
        return _keys.key_array(keys, self._key_dtype)

    def get_many(self, keys):
        """(values, found) for a batch of keys; values are 0 where not found."""
        k = self._key_array(keys)
        values = np.empty(k.size, dtype=self._value_dtype)
        found = np.empty(k.size, dtype=bool)
        lib.nfl_get_many(self._ptr, _u64(k), k.size, _u64(values.view(np.uint64)), _u8(found))
        return values, found

    def contains_many(self, keys):
        """A bool array: which keys are present."""
        k = self._key_array(keys)
        found = np.empty(k.size, dtype=bool)
        lib.nfl_get_many(self._ptr, _u64(k), k.size, ffi.NULL, _u8(found))
        return found

    def _put_many(self, keys, values, mode):
        k = self._key_array(keys)
        v = _keys.value_array(values, self._value_dtype, k.size)
        existed = np.empty(k.size, dtype=bool)
        self._writes += 1
        _check(lib.nfl_put_many(self._ptr, _u64(k), _u64(v), k.size, mode, _u8(existed)))
        return existed

    def put_many(self, keys, values):
        """Upserts a batch; with duplicate keys in the batch the last wins."""
        self._put_many(keys, values, lib.NFL_UPSERT)

    def insert_many(self, keys, values):
        """Inserts a batch; a bool array, False where the key existed."""
        return ~self._put_many(keys, values, lib.NFL_INSERT)

    def delete_many(self, keys):
        """Deletes a batch; a bool array, True where the key was there."""
        k = self._key_array(keys)
        deleted = np.empty(k.size, dtype=bool)
        self._writes += 1
        lib.nfl_delete_many(self._ptr, _u64(k), k.size, _u8(deleted))
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

    def _first_key(self, lo_bits, flags):
        """The first key in range, or None: one native call, no arrays made."""
        scratch = self._scratch_for(1)
        n = _nfl_range(self._ptr, lo_bits, 0, flags, scratch[3], scratch[4], 1)
        key = self._out_key(scratch[3][0]) if n else None
        self._scratch.append(scratch)
        return key

    def range(self, lo, hi):
        """Entries with lo <= key < hi, ascending, as (keys, values) arrays."""
        start = self._lo(lo)
        hi_key = _keys.ceil_key(hi, self._key_dtype)
        if start is None:
            return self._range(0, 0, 0, 0)
        flags = _TO_END if hi_key is None else 0
        hi_bits = 0 if hi_key is None else self._key(hi_key)
        return self._read_all(start, hi_bits, flags, _UNLIMITED)

    def scan(self, start, count):
        """The first count entries with key >= start, as (keys, values) arrays.

        The common case (an int count up to _ITER_CHUNK, a key of the dtype)
        is inlined here, one native call into a pooled buffer: it runs per call.
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

    def lower_bound(self, key):
        """The smallest key >= key, or None."""
        lo = self._lo(key)
        return None if lo is None else self._first_key(lo, _TO_END)

    def min_key(self):
        return self._first_key(0, _ALL)

    def max_key(self):
        scratch = self._scratch_for(1)
        key = self._out_key(scratch[3][0]) if lib.nfl_max(self._ptr, scratch[3], scratch[4]) else None
        self._scratch.append(scratch)
        return key

    def _chunks(self):
        """Ascending (keys, values) chunks; RuntimeError if the index changes."""
        writes, version = self._writes, lib.nfl_version(self._ptr)
        flags, lo = _ALL, 0
        while True:
            if self._writes != writes or lib.nfl_version(self._ptr) != version:
                raise RuntimeError("index changed during iteration")
            keys, values = self._range(lo, 0, flags, _ITER_CHUNK)
            if keys.size == 0:
                return
            yield keys.tolist(), values.tolist()
            if keys.size < _ITER_CHUNK:
                return
            lo, flags = self._key(keys[-1].item()), _TO_END | lib.NFL_LO_EXCLUSIVE

    def _walk(self, pick):
        writes = self._writes
        for chunk in self._chunks():
            for item in pick(chunk):
                if self._writes != writes:
                    raise RuntimeError("index changed during iteration")
                yield item
        if self._writes != writes:  # as dict does, even after the last item
            raise RuntimeError("index changed during iteration")

    def items(self):
        """(key, value) pairs in ascending key order."""
        return self._walk(lambda c: zip(c[0], c[1]))

    def keys(self):
        return self._walk(lambda c: c[0])

    def values(self):
        return self._walk(lambda c: c[1])

    def __iter__(self):
        return self.keys()

    # ---- persistence (nfl.storage) ----------------------------------------------------

    def save(self, path):
        """Writes an atomic, checksummed snapshot: the old file or the new, never a torn one."""
        from nfl import storage

        storage.save_index(self, path)

    @classmethod
    def load(cls, path):
        """Reads a snapshot written by save(); nfl.storage.SnapshotError if it is not valid."""
        from nfl import storage

        return storage.load_index(path)

    def __reduce__(self):
        from nfl import storage

        return storage.index_from_bytes, (storage.index_to_bytes(self),)

    # ---- introspection ------------------------------------------------------------

    @property
    def key_dtype(self) -> str:
        return self._key_dtype

    @property
    def value_dtype(self) -> str:
        return self._value_dtype

    @property
    def flow(self):
        """The Flow in use, or None."""
        return self._flow

    def stats(self) -> dict:
        """Structure and memory figures of the index (see api.md)."""
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
        }

    def memory_usage(self) -> int:
        """Bytes held by the native structure."""
        return lib.nfl_memory_usage(self._ptr)

    def __repr__(self):
        flow = "flow" if self._flow is not None else "no flow"
        return f"<nfl.Index {self._key_dtype}->{self._value_dtype}, {len(self)} keys, {flow}>"
