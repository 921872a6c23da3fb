"""Correctness while measuring: every read result against the stream's expected value."""
import reprlib

import numpy as np

from .ops import CHECKED, NAMES

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 40
_short.maxtuple = 3


class Mismatch(AssertionError):
    """A read returned something other than what the op stream expects: the run is wrong.

    expected: what to show as the expected value (default: the stream's int)."""

    def __init__(self, adapter, path, stream, i, got, expected=None):
        self.index = int(i)
        want = int(stream.expected[i]) if expected is None else expected
        super().__init__(
            f"{adapter} ({path} path): op {i} ({NAMES[int(stream.op[i])]}) key {stream.key[i].item()!r}: "
            f"expected {want}, got {got} (-1 = absent)"
        )


def as_results(got):
    """Read results (value or None per op) as int64, -1 for absent."""
    return np.array([-1 if g is None else g for g in got], dtype=np.int64)


def verify(adapter, path, stream, start, got):
    """Raises Mismatch at the first read or read-modify-write among ops start… whose
    result in `got` (int64 per op, -1 = absent) differs from the stream's expected."""
    end = start + len(got)
    checked = np.isin(stream.op[start:end], list(CHECKED))
    bad = np.flatnonzero(checked & (got != stream.expected[start:end]))
    if bad.size:
        raise Mismatch(adapter, path, stream, start + bad[0], int(got[bad[0]]))


def verify_objects(adapter, path, stream, start, got):
    """Raises Mismatch at the first read or read-modify-write among ops start… whose result in
    `got` (a list, None = absent) is not the very object the stream's expected_values holds."""
    expected = stream.expected_values
    for i in np.flatnonzero(np.isin(stream.op[start : start + len(got)], list(CHECKED))).tolist():
        want = expected[start + i]
        if got[i] is not want:
            shown = "absent" if want is None else f"{_short.repr(want)} (id {id(want):#x})"
            found = "absent" if got[i] is None else f"{_short.repr(got[i])} (id {id(got[i]):#x})"
            raise Mismatch(adapter, path, stream, start + i, found, expected=shown)


def verify_results(adapter, path, stream, start, got):
    """verify_objects for a stream with object values (expected_values), else verify of as_results."""
    if hasattr(stream, "expected_values"):
        verify_objects(adapter, path, stream, start, got)
    else:
        verify(adapter, path, stream, start, as_results(got))
