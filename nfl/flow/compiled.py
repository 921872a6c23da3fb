"""The compiled transform of a flow: native/flow.c's object behind a parameter vector.

The single implementation of z = f(x) that the index builds and probes with,
that nfl.conflicts counts slots through and that training measures its
candidates with.  Knows nothing of training or files.
"""
import numpy as np

from nfl._native import ffi, lib


class Compiled:
    """nfl_flow_create(params), freed with the object; params must be valid (nfl.flow.layout.check)."""

    def __init__(self, params: np.ndarray):
        self._params = np.ascontiguousarray(params, dtype=np.float64)  # kept alive with the handle
        ptr = lib.nfl_flow_create(ffi.from_buffer("double[]", self._params), self._params.size)
        if ptr == ffi.NULL:
            raise ValueError("the native flow refused these parameters")
        self.handle = ffi.gc(ptr, lib.nfl_flow_free)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """z = f(x) for contiguous float64 x: finite and monotone non-decreasing in x."""
        z = np.empty_like(x)
        lib.nfl_flow_transform(self.handle, ffi.from_buffer("double[]", x), ffi.from_buffer("double[]", z), x.size)
        return z

    @property
    def table_bytes(self) -> int:
        """Bytes of the tables the transform reads (knots padded for the lifting, pieces, radix cells)."""
        return lib.nfl_flow_table_bytes(self.handle)

    @property
    def lifting_step(self) -> int:
        """The first step of the bin search's binary lifting (0: none): its cost, log2(step) + 1 probes."""
        return lib.nfl_flow_lifting_step(self.handle)
