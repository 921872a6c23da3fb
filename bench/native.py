"""nfl's native paths: op streams replayed by the native executor.

The batch path runs nfl_execute (fused batches); the per-op native path runs
nfl_execute_each (one op at a time, each timed alone)."""
import numpy as np


def _lib():
    from nfl._native import ffi, lib

    return ffi, lib


def timer():
    """The native cycle counter: its rate and the cost of one read, in ns."""
    _, lib = _lib()
    rate = lib.nfl_ticks_per_ns()
    return {"ticks_per_ns": rate, "overhead_ns": lib.nfl_timer_overhead_ticks() / rate}


class Executor:
    """One op stream, laid out for nfl_execute once, replayed in segments."""

    def __init__(self, stream):
        self.ffi, self.lib = _lib()
        self.op = np.ascontiguousarray(stream.op, dtype=np.uint8)
        self.key = np.ascontiguousarray(stream.key).view(np.uint64)  # raw 8-byte keys
        self.value = np.ascontiguousarray(stream.value, dtype=np.int64).view(np.uint64)
        self.scan_len = np.ascontiguousarray(stream.scan_len, dtype=np.int64)
        self.expected = np.ascontiguousarray(stream.expected, dtype=np.int64)
        self.ticks_per_ns = self.lib.nfl_ticks_per_ns()

    def _buf(self, ctype, array, start=None, end=None):
        return self.ffi.NULL if array is None else self.ffi.from_buffer(ctype, array[start:end])

    def run(self, index_ptr, start, end, batch, time_ops=False, each=False):
        """Runs ops [start, end) on an nfl_index * in batches of `batch`: fused
        (nfl_execute), or with each=True one op at a time (nfl_execute_each).

        Returns (first op whose read differed from expected or -1, ns of each
        batch, ns of each op or None).  Raises RuntimeError if the executor
        fails (a bad op code, no memory)."""
        report = self.ffi.new("nfl_exec_report *")
        batch_ticks = np.zeros(-(-(end - start) // batch), dtype=np.uint64)
        op_ticks = np.zeros(end - start, dtype=np.uint64) if time_ops else None
        name = "nfl_execute_each" if each else "nfl_execute"
        rc = getattr(self.lib, name)(
            index_ptr,
            self._buf("uint8_t[]", self.op, start, end),
            self._buf("uint64_t[]", self.key, start, end),
            self._buf("uint64_t[]", self.value, start, end),
            self._buf("int64_t[]", self.scan_len, start, end),
            self._buf("int64_t[]", self.expected, start, end),
            end - start,
            batch,
            self._buf("uint64_t[]", op_ticks),
            self._buf("uint64_t[]", batch_ticks),
            report,
        )
        if rc != 0:
            raise RuntimeError(f"{name} failed with code {rc} after {report.ops_done} ops")
        bad = -1 if report.first_mismatch < 0 else start + report.first_mismatch
        return bad, batch_ticks / self.ticks_per_ns, None if op_ticks is None else op_ticks / self.ticks_per_ns
