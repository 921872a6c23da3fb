"""Snapshots: an index as one self-describing, checksummed file.

Layout (little-endian; every section starts at a multiple of 8 bytes):

    24 bytes   prefix: magic b"NFLSNAP\\0", u32 format version (1), u32 header
               length H, u32 CRC-32 of the prefix's first 16 bytes and the
               header, u32 zero
    H bytes    header: UTF-8 JSON padded with spaces to a multiple of 8, with
               key_dtype, value_dtype, count (N), bucket_size,
               tail_conflicts_raw, tail_conflicts_flow, wal_seq (the last
               write-ahead log record the snapshot contains; 0 outside a
               durable index), flow_reason (optional: why the flow is on or
               off) and flow: null or {"n_params": P, "meta": {...}}
    8*P bytes  the flow's parameter vector (float64)
    8*N bytes  keys, strictly ascending, in the key dtype
    8*N bytes  values as raw uint64 words -- or, for value_dtype "object",
               V bytes: the values as one pickle (protocol 5) of a list,
               zero-padded to a multiple of 8 (the header's values_bytes is
               V before padding)
    32 bytes   SHA-256 of everything before it

Object values are unpickled only after the SHA-256 of the whole file has
been verified; unpickling runs code the file names, so a snapshot with object
values must come from a trusted source (as any pickle).

Why two checksums: the header CRC-32 lets a reader reject a damaged header
before trusting the lengths in it; SHA-256 over the whole file makes an
undetected corruption of the data practically impossible (CRC-32 would miss
one random corruption in 2**32, too weak for hundreds of MB that the index
then trusts).  With the SHA instructions of current x86 and ARM CPUs it runs
at about 1 GB/s (0.2 s for a 10M-key file); it is also what the flow weights
file uses.

This module is the codec alone: it reads and writes a Record, the index as
plain data, and knows nothing of nfl.Index (which converts to and from a
Record, and rebuilds the tree from one with the saved bucket size, flow and
tail conflicts: no sorting, training or auto switch).
"""
import hashlib
import json
import os
import struct
import zlib
from typing import NamedTuple, Optional

import numpy as np

from nfl import _boundary, _keys
from nfl.storage import pickled
from nfl.storage.errors import SnapshotError, SnapshotNotFoundError
from nfl.storage.files import atomic_write

MAGIC = b"NFLSNAP\0"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIIII")
_CRC_AT = 16  # the prefix bytes before the header CRC
_DIGEST = 32


class Record(NamedTuple):
    """An index as plain data: what a snapshot holds."""

    key_dtype: str
    value_dtype: str
    keys: np.ndarray  # strictly ascending, of key_dtype
    values: np.ndarray  # raw uint64 words; an object array for value_dtype "object"
    flow_params: Optional[np.ndarray]  # the flow's float64 vector, or None
    flow_meta: Optional[dict]
    bucket_size: int
    tail_conflicts_raw: Optional[float]
    tail_conflicts_flow: Optional[float]
    flow_reason: Optional[str]  # why the flow is on or off; None in files written before it was kept


def _header(record: Record, wal_seq: int, values_bytes) -> dict:
    head = {
        "key_dtype": record.key_dtype,
        "value_dtype": record.value_dtype,
        "count": int(record.keys.size),
        "bucket_size": int(record.bucket_size),
        "tail_conflicts_raw": _opt_float(record.tail_conflicts_raw),
        "tail_conflicts_flow": _opt_float(record.tail_conflicts_flow),
        "wal_seq": int(wal_seq),
        "flow_reason": record.flow_reason,
        "flow": None if record.flow_params is None else {"n_params": int(record.flow_params.size),
                                                          "meta": record.flow_meta or {}},
    }
    if values_bytes is not None:
        head["values_bytes"] = values_bytes
    return head


def _header_crc(start, text) -> int:
    """CRC-32 of the prefix's first 16 bytes and the header."""
    return zlib.crc32(text, zlib.crc32(start))


def _opt_float(x):
    return None if x is None else float(x)


def encode(record: Record, wal_seq: int = 0) -> list:
    """The buffers that make up the snapshot of record, in file order."""
    keys, values = record.keys, record.values
    blob = None
    if record.value_dtype == "object":
        blob = pickled.dumps(values)
        values = np.frombuffer(pickled.padded(blob), dtype=np.uint8)
    text = json.dumps(_header(record, wal_seq, None if blob is None else len(blob)), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    start = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(text), 0, 0)[:_CRC_AT]
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(text), _header_crc(start, text), 0)
    flow = np.empty(0) if record.flow_params is None else record.flow_params
    parts = [prefix, text, flow.astype("<f8", copy=False),
             keys.astype(keys.dtype.newbyteorder("<"), copy=False),
             values if blob is not None else values.astype("<u8", copy=False)]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return parts + [digest.digest()]


def save(record: Record, path, wal_seq: int = 0) -> None:
    """Writes a snapshot of record to path atomically (see files.atomic_write)."""
    atomic_write(path, encode(record, wal_seq))


def _read(path) -> np.ndarray:
    """The bytes of the file at path, in one buffer (no zero-fill, one copy)."""
    try:
        f = open(path, "rb", buffering=0)
    except FileNotFoundError as exc:
        raise SnapshotNotFoundError(exc.errno, "no snapshot file", os.fspath(path)) from None
    except IsADirectoryError:
        raise SnapshotError(f"{os.fspath(path)} is a directory, not a snapshot (nfl.open opens those)") from None
    with f:
        buf = np.empty(os.fstat(f.fileno()).st_size, dtype=np.uint8)
        got = 0
        while got < buf.size:
            n = f.readinto(memoryview(buf)[got:])
            if not n:
                return buf[:got]
            got += n
    return buf


def _check_prefix(buf, size: int, where: str):
    """The header length, after checking magic, version, header CRC and that size can hold them.

    buf holds at least the prefix and header of a file of size bytes.
    """
    if size < _PREFIX.size:
        if bytes(buf[:len(MAGIC)]) != MAGIC[:size]:
            raise SnapshotError(f"{where}: not an nfl snapshot (bad magic)")
        raise SnapshotError(f"{where}: truncated snapshot ({size} bytes)")
    magic, version, head_len, crc, _ = _PREFIX.unpack_from(buf)
    if magic != MAGIC:
        raise SnapshotError(f"{where}: not an nfl snapshot (bad magic)")
    if version != FORMAT_VERSION:
        raise SnapshotError(f"{where}: snapshot format version {version} is not supported "
                            f"(this nfl reads version {FORMAT_VERSION})")
    if _PREFIX.size + head_len + _DIGEST > size:
        raise SnapshotError(f"{where}: truncated snapshot ({size} bytes, header alone needs more)")
    text = buf[_PREFIX.size:_PREFIX.size + head_len]
    if _header_crc(buf[:_CRC_AT], text) != crc:
        raise SnapshotError(f"{where}: snapshot header checksum mismatch (corrupted)")
    return head_len


def _field(head, name, kinds, ok=lambda v: True):
    value = head.get(name)
    if not isinstance(value, kinds) or isinstance(value, bool) or not ok(value):
        raise SnapshotError(f"bad header field {name}: {value!r}")
    return value


def _parse_header(text: bytes) -> dict:
    """The header as a dict with every field checked for type and range."""
    try:
        head = json.loads(bytes(text).decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise SnapshotError(f"header is not valid JSON ({exc})") from None
    if not isinstance(head, dict):
        raise SnapshotError("header is not a JSON object")
    key_dtype = _field(head, "key_dtype", str)
    if key_dtype not in _keys.KEY_DTYPES:
        raise SnapshotError(f"unsupported key dtype {key_dtype!r} (nfl reads {', '.join(_keys.KEY_DTYPES)})")
    value_dtype = _field(head, "value_dtype", str)
    if value_dtype not in _keys.INDEX_VALUE_DTYPES:
        raise SnapshotError(f"unsupported value dtype {value_dtype!r} "
                            f"(nfl reads {', '.join(_keys.INDEX_VALUE_DTYPES)})")
    if value_dtype == "object":
        _field(head, "values_bytes", int, lambda v: v >= 0)
    _field(head, "count", int, lambda v: v >= 0)
    _field(head, "bucket_size", int, lambda v: 1 <= v <= _boundary.MAX_BUCKET)
    _field(head, "wal_seq", int, lambda v: v >= 0)
    for name in ("tail_conflicts_raw", "tail_conflicts_flow"):
        _field(head, name, (int, float, type(None)))
    _field(head, "flow_reason", (str, type(None)))
    flow = head.get("flow")
    if flow is not None:
        if not isinstance(flow, dict) or not isinstance(flow.get("meta"), dict):
            raise SnapshotError(f"bad header field flow: {flow!r}")
        _field(flow, "n_params", int, lambda v: v > 0)
    return head


def _n_params(head) -> int:
    return 0 if head["flow"] is None else head["flow"]["n_params"]


def _header_of(buf, size: int, where: str) -> dict:
    """The checked header of a snapshot of size bytes whose beginning is buf."""
    head_len = _check_prefix(buf, size, where)
    try:
        return _parse_header(buf[_PREFIX.size:_PREFIX.size + head_len])
    except SnapshotError as exc:
        raise SnapshotError(f"{where}: {exc}") from None


def decode(buf, where: str = "snapshot"):
    """(Record, header) from the bytes of a snapshot; SnapshotError if they are not valid."""
    buf = np.frombuffer(buf, dtype=np.uint8)
    head = _header_of(buf, buf.size, where)
    n, n_params = head["count"], _n_params(head)
    start = _PREFIX.size + _PREFIX.unpack_from(buf)[2]
    objects = head["value_dtype"] == "object"
    values_room = (head["values_bytes"] + 7) // 8 * 8 if objects else 8 * n
    size = start + 8 * (n_params + n) + values_room + _DIGEST
    if buf.size != size:
        what = "truncated" if buf.size < size else "has trailing bytes"
        raise SnapshotError(f"{where}: snapshot {what} ({buf.size} bytes, expected {size})")
    if hashlib.sha256(buf[:-_DIGEST]).digest() != bytes(buf[-_DIGEST:]):
        raise SnapshotError(f"{where}: snapshot checksum mismatch (corrupted)")
    params = np.frombuffer(buf, "<f8", n_params, start).astype(np.float64, copy=False)
    at = start + 8 * n_params
    keys = np.frombuffer(buf, "<u8", n, at).astype(np.uint64, copy=False).view(head["key_dtype"])
    if objects:  # after the checksum: never unpickle unverified bytes
        values = pickled.loads(bytes(buf[at + 8 * n:at + 8 * n + head["values_bytes"]]), n, SnapshotError, where)
    else:
        values = np.frombuffer(buf, "<u8", n, at + 8 * n).astype(np.uint64, copy=False)
    flow = head["flow"]
    record = Record(head["key_dtype"], head["value_dtype"], keys, values,
                    None if flow is None else params, None if flow is None else flow["meta"],
                    head["bucket_size"], head["tail_conflicts_raw"], head["tail_conflicts_flow"],
                    head.get("flow_reason"))
    return record, head


def load(path):
    """(Record, header) from the snapshot file at path."""
    return decode(_read(path), os.fspath(path))


def read_header(path) -> dict:
    """The checked header of the snapshot file at path, without reading its body."""
    try:
        f = open(path, "rb")
    except FileNotFoundError as exc:
        raise SnapshotNotFoundError(exc.errno, "no snapshot file", os.fspath(path)) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(_PREFIX.size)
        if len(data) == _PREFIX.size:
            data += f.read(min(_PREFIX.unpack(data)[2], size))
    return _header_of(np.frombuffer(data, dtype=np.uint8), size, os.fspath(path))
