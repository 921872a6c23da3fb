"""The write-ahead log: length-prefixed, checksummed records of write calls.

Layout (little-endian; records start at multiples of 8 bytes):

    16 bytes   prefix: magic b"NFLWAL\\0\\0", u32 format version (1), u32 CRC-32
               of the first 12 bytes
    records    each one write call (a batch is one record):
               u32 CRC-32 of the rest of the record
               u8 op (1 upsert, 2 insert, 3 delete), 3 zero bytes
               u64 count N
               u64 seq, consecutive over the life of the store (first is 1)
               8*N bytes keys (raw words of the key dtype)
               8*N bytes values (raw uint64 words; absent for delete)
               -- or, with the op's OBJECTS flag (0x80, on upsert and
               insert of an object-valued index): u64 length V, then V
               bytes, the values as one pickle (protocol 5) of a list,
               zero-padded to a multiple of 8 (nfl.storage.pickled);
               unpickled only after the record's CRC is verified

A record is appended with one write at the log's end and acknowledged after
fdatasync (sync "always").  A crash can therefore only leave the last record
incomplete, and that record was never acknowledged.  read() stops at the
first record that is short or fails its CRC; what it finds there is one of:

    damage in the middle   the record's header says it ends before the file
                           does, or a valid later record follows it: WalError
                           (no crash makes this; nothing is dropped)
    a torn tail            the file ends inside the record's header or before
                           the end its header declares: what a crash leaves
    a damaged tail         a full-length last record (its declared end is the
                           file's end) whose CRC or op is wrong: a bit flip, or
                           a file system that extended the file with zeros in
                           a crash

tail() tells the last two apart; the durable index (durable.py) decides what
to do with them.  A flip that makes the count of the last record larger
reads as a torn tail (its end lies past the file's): the two cannot be told
apart, and both are kept aside, never applied.  Damage that also garbles the
header and every later record cannot be told from a torn tail either; the log
then recovers to the records before it (point in time), never past it.
CRC-32 per record, as in LevelDB and RocksDB logs: it catches every torn
write and every burst of up to 32 flipped bits, and records are small and
many.
"""
import os
import struct
import zlib
from typing import NamedTuple

import numpy as np

from nfl.storage import pickled
from nfl.storage.errors import WalError
from nfl.storage.files import atomic_write, write_all

MAGIC = b"NFLWAL\0\0"
FORMAT_VERSION = 1
UPSERT, INSERT, DELETE = 1, 2, 3
OBJECTS = 0x80  # op flag: the values are pickled objects
_WORD = struct.Struct("<Q")
_WORDS = {UPSERT: 2, INSERT: 2, DELETE: 1}  # 8-byte words per entry
_PREFIX = struct.Struct("<8sII")
_RECORD = struct.Struct("<IB3xQQ")
START = _PREFIX.size  # where the first record begins
_SEQ_WORD = 2  # the seq field is the third 8-byte word of a record header
_datasync = getattr(os, "fdatasync", os.fsync)  # the data and the file size, not the mtime


class Record(NamedTuple):
    seq: int
    op: int
    keys: np.ndarray  # raw uint64
    values: np.ndarray  # raw uint64, or an object array (object values); None for DELETE


def _prefix() -> bytes:
    head = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0)[:12]
    return head + struct.pack("<I", zlib.crc32(head))


def create(path) -> None:
    """Writes an empty log at path, atomically."""
    atomic_write(path, [_prefix()])


def encode(seq: int, op: int, keys: np.ndarray, values) -> bytes:
    """One record: keys a raw uint64 array, values a raw uint64 array or an
    object array (pickled: pickle's error for a value it cannot pickle), or
    None for DELETE."""
    body = [keys.astype("<u8", copy=False)]
    if op != DELETE and values.dtype == object:
        blob = pickled.dumps(values)
        op |= OBJECTS
        body += [np.frombuffer(_WORD.pack(len(blob)), np.uint8), np.frombuffer(pickled.padded(blob), np.uint8)]
    elif op != DELETE:
        body.append(values.astype("<u8", copy=False))
    head = _RECORD.pack(0, op, keys.size, seq)
    crc = zlib.crc32(head[4:])
    for part in body:
        crc = zlib.crc32(part, crc)
    return b"".join([struct.pack("<I", crc), head[4:], *(part.tobytes() for part in body)])


def _declared_end(buf: np.ndarray, at: int):
    """Where the record at offset at says it ends, if its header is readable (known op); else None."""
    if buf.size - at < _RECORD.size:
        return None
    _, op, count, _ = _RECORD.unpack_from(buf, at)
    if op & OBJECTS and op & ~OBJECTS in (UPSERT, INSERT):
        length_at = at + _RECORD.size + 8 * count
        if length_at + 8 > buf.size:
            return length_at + 8  # past the end: torn
        return length_at + 8 + (_WORD.unpack_from(buf, length_at)[0] + 7) // 8 * 8
    words = _WORDS.get(op)
    return None if words is None else at + _RECORD.size + 8 * words * count


def _record_at(buf: np.ndarray, at: int):
    """The valid record starting at offset at, or None (short, unknown op, bad CRC)."""
    end = _declared_end(buf, at)
    if end is None or end > buf.size:
        return None
    crc, op, count, seq = _RECORD.unpack_from(buf, at)
    if zlib.crc32(buf[at + 4:end]) != crc:
        return None
    keys = np.frombuffer(buf, "<u8", count, at + _RECORD.size).astype(np.uint64, copy=False)
    values = None
    if op & OBJECTS:  # CRC verified above: only now unpickled
        length_at = at + _RECORD.size + 8 * count
        length = _WORD.unpack_from(buf, length_at)[0]
        values = pickled.loads(bytes(buf[length_at + 8:length_at + 8 + length]), count, WalError,
                               f"log record at offset {at}")
        op &= ~OBJECTS
    elif op != DELETE:
        values = np.frombuffer(buf, "<u8", count, at + _RECORD.size + 8 * count).astype(np.uint64, copy=False)
    return Record(seq, op, keys, values), end


def _valid_after(buf: np.ndarray, at: int, last_seq: int) -> bool:
    """Whether a valid record with seq > last_seq starts somewhere after offset at."""
    words = np.frombuffer(buf, "<u8", (buf.size - at) // 8, at)
    if words.size <= _SEQ_WORD:
        return False
    most = last_seq + 1 + words.size  # seqs cannot outnumber the words left
    seqs = words[_SEQ_WORD:]
    for i in np.flatnonzero((seqs > last_seq) & (seqs <= most)):
        if i > 0 and _record_at(buf, at + 8 * int(i)) is not None:
            return True
    return False


def read(path, where: str = None):
    """(records, end): every record of the log at path, and where the valid part ends.

    A torn or damaged last record is left out (tail(path, end) says which,
    and the caller decides); damage followed by a valid record or by more
    bytes than the record declares, a gap or a repeat in the sequence, or a
    bad prefix raises WalError.  Cost: one read of the file, O(its size).
    """
    where = where or os.fspath(path)
    buf = np.fromfile(path, dtype=np.uint8)
    if buf.size < _PREFIX.size or bytes(buf[:_PREFIX.size]) != _prefix():
        version = struct.unpack_from("<I", buf, 8)[0] if buf.size >= 12 else FORMAT_VERSION
        if bytes(buf[:8]) == MAGIC and version != FORMAT_VERSION:
            raise WalError(f"{where}: log format version {version} is not supported "
                           f"(this nfl reads version {FORMAT_VERSION})")
        raise WalError(f"{where}: not an nfl write-ahead log (bad or truncated prefix)")
    records, at = [], START
    while at < buf.size:
        found = _record_at(buf, at)
        if found is None:
            last = records[-1].seq if records else 0
            if _valid_after(buf, at, last):
                raise WalError(f"{where}: damaged record at offset {at} followed by valid records")
            declared = _declared_end(buf, at)
            if declared is not None and declared < buf.size:
                raise WalError(f"{where}: damaged record at offset {at}, and the log goes on after it")
            break  # a torn tail: the write was never acknowledged
        record, end = found
        if records and record.seq != records[-1].seq + 1:
            raise WalError(f"{where}: record at offset {at} has seq {record.seq} after {records[-1].seq}")
        records.append(record)
        at = end
    return records, at


class Tail(NamedTuple):
    """The bytes after the valid part of a log, and what they are."""
    data: bytes
    torn: bool  # True: cut short, as a crash leaves it; False: full length but damaged
    why: str


def tail(path, end: int):
    """The Tail of the log at path after offset end (where read() stopped), or None if there is none."""
    with open(path, "rb") as f:
        f.seek(end)
        data = f.read()
    if not data:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    declared = _declared_end(buf, 0)
    if buf.size < _RECORD.size:
        return Tail(data, True, f"torn last record at offset {end}: {buf.size} bytes, "
                                f"shorter than a record header")
    if declared is None:
        return Tail(data, False, f"damaged last record at offset {end}: unknown op {buf[4]}")
    if declared > buf.size:
        return Tail(data, True, f"torn last record at offset {end}: {buf.size} of the "
                                f"{declared} bytes its header declares")
    return Tail(data, False, f"damaged last record at offset {end}: full length "
                             f"({buf.size} bytes) but its checksum does not match")


class Wal:
    """An open log: appends records, durably when sync is True; truncates after a checkpoint."""

    def __init__(self, path, end: int, sync: bool):
        self._file = open(path, "r+b", buffering=0)
        self._file.truncate(end)  # drop a torn tail before appending after it
        os.fsync(self._file.fileno())
        self._end = end
        self._sync = sync

    def append(self, seq: int, op: int, keys: np.ndarray, values) -> None:
        """Writes one record; on failure the file is cut back so no torn record stays mid-log."""
        data = encode(seq, op, keys, values)
        fd = self._file.fileno()
        try:
            os.lseek(fd, self._end, os.SEEK_SET)
            write_all(fd, data)
            if self._sync:
                _datasync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, self._end)
            except OSError:
                self._file.close()  # cannot cut it back: append no more
            raise
        self._end += len(data)

    def reset(self) -> None:
        """Drops every record (after a checkpoint has saved them in the snapshot)."""
        self._end = START
        self._file.truncate(self._end)
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Closes the file, flushing it to disk first if appends were not synced."""
        if not self._sync and not self._file.closed:
            _datasync(self._file.fileno())
        self._file.close()
