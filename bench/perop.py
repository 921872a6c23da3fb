"""The per-op Python path: one Python call per op, what a casual user gets."""
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .ops import INSERT, READ, RMW, SCAN


@dataclass
class Handlers:
    """An index's per-op Python calls.

    get(k) -> value or None; put(k, v) upserts; delete(k); scan(k, n) -> up to
    n entries from the first key >= k."""

    get: Callable
    put: Callable
    delete: Callable
    scan: Callable


def columns(stream):
    """The stream's op, key, value and scan-length columns as Python lists."""
    return stream.op.tolist(), stream.key.tolist(), stream.value.tolist(), stream.scan_len.tolist()


def run(h, cols, start, end, chunk, times, got):
    """Runs ops [start, end), timing each run of `chunk` ops with perf_counter_ns.

    times[i // chunk] gets the ns of the run starting at op i (start is a
    multiple of chunk); got[i] the result of each read or read-modify-write."""
    ops, keys, values, lens = cols
    get, put, delete, scan = h.get, h.put, h.delete, h.scan
    now = time.perf_counter_ns
    for b in range(start, end, chunk):
        todo = range(b, min(b + chunk, end))
        t0 = now()
        for i in todo:
            c = ops[i]
            if c == READ:
                got[i] = get(keys[i])
            elif c <= INSERT:
                put(keys[i], values[i])
            elif c == SCAN:
                scan(keys[i], lens[i])
            elif c == RMW:
                got[i] = get(keys[i])
                put(keys[i], values[i])
            else:
                delete(keys[i])
        times[b // chunk] = now() - t0


def timer_overhead_ns(samples=10001):
    """Median gap between two back-to-back perf_counter_ns calls."""
    now = time.perf_counter_ns
    gaps = np.empty(samples)
    for i in range(samples):
        t0 = now()
        gaps[i] = now() - t0
    return float(np.median(gaps))
