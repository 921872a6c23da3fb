"""The compiled transform of a flow: native/flow.c's object behind a parameter vector.

The single implementation of z = f(x) that the index builds and probes with,
that nfl.conflicts counts slots through and that training measures its
candidates with.  Knows nothing of training or files.
"""
import numpy as np

from nfl import _boundary


class Compiled:
    """nfl_flow_create(params), freed with the object; params must be valid (nfl.flow.layout.check)."""

    def __init__(self, params: np.ndarray):
        # the C core copies the vector; ValueError if it refuses it
        self.handle = _boundary.flow_create(np.ascontiguousarray(params, dtype=np.float64))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """z = f(x) for contiguous float64 x: finite and monotone non-decreasing in x."""
        return _boundary.flow_transform(self.handle, x)

    @property
    def table_bytes(self) -> int:
        """Bytes of the tables the transform reads (knots padded for the lifting, pieces, radix cells)."""
        return _boundary.flow_table_bytes(self.handle)

    @property
    def lifting_step(self) -> int:
        """The first step of the bin search's binary lifting (0: none): its cost, log2(step) + 1 probes."""
        return _boundary.flow_lifting_step(self.handle)
