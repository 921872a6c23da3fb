"""YCSB records as values: an op stream whose stored values are byte-string records, not integers.

YCSB's record is ``fieldcount`` fields of ``fieldlength`` random bytes
(defaults 10 and 100, its ``-p fieldcount`` / ``-p fieldlength``).  A
:class:`RecordStream` lays one over an :class:`~workloads.stream.OpStream`:
every int64 value the stream stores (bulk-loaded or written by an op) stands
for one record, and each distinct value is given exactly one record object,
so a read must return *the very object* the last write of that key stored
(``expected_values``), as a dict would.

Layouts (what a Python user keeps for such a row):

- ``"records"``: a tuple of ``fieldcount`` bytes objects.  The fields stay
  separately addressable, as in YCSB (read or update one field), and a
  tuple is the lightest container that keeps them so: a dict of field names
  would add about 350 bytes per record for names every record shares.
- ``"bytes"``: one bytes object of ``fieldcount * fieldlength`` bytes (the
  fields concatenated): the least memory, the fields cut by offset.

A record's bytes are printable ASCII (32..126, like YCSB's random byte
iterators), drawn by SplitMix64 from its int value alone, so a stream
and its records depend only on the stream's seed.
"""

from __future__ import annotations

import gc

import numpy as np
from numba import njit

from .generators import _next_u64
from .properties import core_settings
from .stream import INSERT, READ, RMW, UPDATE

LAYOUTS = ("records", "bytes")
#: YCSB's defaults.
FIELDCOUNT, FIELDLENGTH = 10, 100
_SALT = np.uint64(0x5EC0_4D5F_1E1D_B17E)  # record bytes: a stream of their own, apart from the op stream's
_CHUNK = 1 << 16  # records built per pass (bounds the staging array at _CHUNK * width bytes)


_PRINTABLE = (32 + (np.arange(256) * 95 >> 8)).astype(np.uint8)  # a random byte -> printable ASCII


@njit(cache=True, error_model="numpy")
def _bytes(values, width, printable):
    """A (len(values), width) uint8 array: the printable bytes of each value's record, a pure
    function of the value (8 bytes from each SplitMix64 word)."""
    out = np.empty((len(values), width), dtype=np.uint8)
    for r in range(len(values)):
        st = np.uint64(values[r]) ^ _SALT
        for j in range(0, width, 8):
            st, z = _next_u64(st)
            for k in range(min(8, width - j)):
                out[r, j + k] = printable[(z >> np.uint64(8 * k)) & np.uint64(0xFF)]
    return out


def records(values, fieldcount=FIELDCOUNT, fieldlength=FIELDLENGTH, layout="records") -> np.ndarray:
    """An object array: the record of each int value (equal values, equal records).

    layout "records": a tuple of fieldcount bytes objects of fieldlength bytes;
    "bytes": one bytes object of fieldcount * fieldlength bytes.  ValueError
    for another layout or a count or length below 1.  Cost: O(n * fieldcount
    * fieldlength), built _CHUNK records at a time.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"record layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if fieldcount < 1 or fieldlength < 1:
        raise ValueError(f"fieldcount and fieldlength must be at least 1, got {fieldcount} and {fieldlength}")
    values = np.ascontiguousarray(values, dtype=np.int64)
    out = np.empty(values.size, dtype=object)
    width = fieldcount * fieldlength
    collecting = gc.isenabled()
    gc.disable()  # millions of fresh tuples would set off full collections over the growing heap
    try:
        for s in range(0, values.size, _CHUNK):
            raw = _bytes(values[s : s + _CHUNK], width, _PRINTABLE)
            if layout == "bytes":  # no byte is 0, so the S dtype strips nothing
                made = raw.view(f"S{width}").ravel().tolist()
            else:
                made = map(tuple, raw.view(f"S{fieldlength}").tolist())
            out[s : s + len(raw)] = np.fromiter(made, dtype=object, count=len(raw))  # tuples stay elements
    finally:
        if collecting:
            gc.enable()
    return out


def shape(stream) -> tuple[int, int]:
    """(fieldcount, fieldlength) of a stream: its properties (-p overrides included), else YCSB's defaults.

    ValueError for a fieldlengthdistribution other than constant (not modelled)."""
    props = dict(stream.meta.get("properties") or {})
    dist = props.get("fieldlengthdistribution", "constant")
    if dist != "constant":
        raise ValueError(f"fieldlengthdistribution={dist}: only constant field lengths are modelled")
    cfg = core_settings(props)
    return cfg["fieldcount"], cfg["fieldlength"]


class RecordStream:
    """An op stream whose values are records: the stream's arrays, with the values replaced.

    ``load_values`` (object array: the record of each loaded key), ``value``
    (the record each write stores, None for other ops) and ``expected_values``
    (the record object each read or read-modify-write must return, None for
    absent and for other ops) are built on first use and dropped by
    ``release()``; every other attribute (``op``, ``key``, ``expected``,
    ``meta``…) is the int stream's.  ``memo`` keeps data derived from the
    records (a batch plan) for as long as they live.
    """

    def __init__(self, stream, layout="records", fieldcount=None, fieldlength=None):
        if layout not in LAYOUTS:
            raise ValueError(f"record layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
        count, length = shape(stream)
        self.stream, self.layout = stream, layout
        self.fieldcount, self.fieldlength = fieldcount or count, fieldlength or length
        self._built = None

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.stream, name)

    def __len__(self):
        return len(self.stream.op)

    def describe(self) -> str:
        """'10x100-byte tuple records' style name of the values."""
        kind = "tuple records" if self.layout == "records" else "bytes records"
        return f"{self.fieldcount}x{self.fieldlength}-byte {kind}"

    def _build(self):
        if self._built is None:
            s = self.stream
            writes = np.isin(s.op, (UPDATE, INSERT, RMW))
            stored = np.concatenate([s.load_values, s.value[writes]])
            distinct, which = np.unique(stored, return_inverse=True)
            made = records(distinct, self.fieldcount, self.fieldlength, self.layout)
            value = np.full(len(s.op), None, dtype=object)
            value[writes] = made[which[len(s.load_values):]]
            expected = np.full(len(s.op), None, dtype=object)
            read = np.isin(s.op, (READ, RMW)) & (s.expected != -1)
            at = np.minimum(np.searchsorted(distinct, s.expected[read]), max(distinct.size - 1, 0))
            if at.size and not np.array_equal(distinct[at], s.expected[read]):
                raise ValueError("the stream expects a value that no load or write stores")
            expected[read] = made[at]
            self._built = {"load_values": made[which[: len(s.load_values)]], "value": value,
                           "expected_values": expected, "memo": {}}
        return self._built

    @property
    def load_values(self):
        return self._build()["load_values"]

    @property
    def value(self):
        return self._build()["value"]

    @property
    def expected_values(self):
        return self._build()["expected_values"]

    def memo(self, key, make):
        """make() once per key while the records live (dropped by release())."""
        memo = self._build()["memo"]
        if key not in memo:
            memo[key] = make()
        return memo[key]

    def release(self):
        """Drops the records (rebuilt, identical, on next use)."""
        self._built = None
