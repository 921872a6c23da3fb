"""Correctness while measuring: every read result against the stream's expected value."""
import numpy as np

from .ops import CHECKED, NAMES


class Mismatch(AssertionError):
    """A read returned something other than what the op stream expects: the run is wrong."""

    def __init__(self, adapter, path, stream, i, got):
        self.index = int(i)
        super().__init__(
            f"{adapter} ({path} path): op {i} ({NAMES[int(stream.op[i])]}) key {stream.key[i].item()!r}: "
            f"expected {int(stream.expected[i])}, got {got} (-1 = absent)"
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
