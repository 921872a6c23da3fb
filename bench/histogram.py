"""HDR-style log-linear latency histogram, in numpy.

Values (non-negative integers, ns) below 2**SUB_BITS land in buckets of width
1, so they are exact; above, each power of two is split into 2**(SUB_BITS-1)
equal buckets, so a reported value v' of a true value v satisfies
v <= v' <= v * (1 + PRECISION): three significant digits, as HdrHistogram's
default.  Percentiles use nearest rank and report the bucket's highest
equivalent value (capped at the exact maximum), as HdrHistogram does.
"""
import numpy as np

SUB_BITS = 11
PRECISION = 2.0 ** -(SUB_BITS - 1)
MAX_VALUE = 2**53 - 1  # float64-exact; ~104 days in ns
_HALF = 1 << (SUB_BITS - 1)
N_BUCKETS = (1 << SUB_BITS) + (53 - SUB_BITS) * _HALF
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9, "p99.99": 99.99}


def bucket_index(values):
    """Bucket of each value (int64 array)."""
    v = np.asarray(values, dtype=np.int64)
    _, exp = np.frexp(v.astype(np.float64))  # exp = bit length, exact below 2**53
    shift = np.maximum(exp.astype(np.int64) - SUB_BITS, 0)
    mantissa = v >> shift
    return np.where(shift == 0, v, (1 << SUB_BITS) + (shift - 1) * _HALF + mantissa - _HALF)


def bucket_bounds(index):
    """(lowest, highest) value that map to each bucket index."""
    i = np.asarray(index, dtype=np.int64)
    over = i >= (1 << SUB_BITS)
    shift = np.where(over, (i - (1 << SUB_BITS)) // _HALF + 1, 0)
    mantissa = np.where(over, (i - (1 << SUB_BITS)) % _HALF + _HALF, i)
    low = mantissa << shift
    return low, low + (np.int64(1) << shift) - 1


class Histogram:
    """Counts of latencies in ns, with exact count, min, max and mean."""

    def __init__(self):
        self.counts = np.zeros(N_BUCKETS, dtype=np.int64)
        self.count = 0
        self.total = 0
        self.min = None
        self.max = None

    @classmethod
    def of(cls, values):
        """A histogram holding `values`."""
        h = cls()
        h.record(values)
        return h

    def record(self, values):
        """Adds an array of non-negative ns values (rounded, clipped to MAX_VALUE)."""
        v = np.clip(np.rint(np.asarray(values, dtype=np.float64)), 0, MAX_VALUE).astype(np.int64)
        if v.size == 0:
            return
        self.counts += np.bincount(bucket_index(v), minlength=N_BUCKETS)
        self.count += int(v.size)
        self.total += int(v.sum())
        lo, hi = int(v.min()), int(v.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)

    def merge(self, other):
        """Adds another histogram's counts to this one."""
        if other.count:
            self.counts += other.counts
            self.count += other.count
            self.total += other.total
            self.min = other.min if self.min is None else min(self.min, other.min)
            self.max = other.max if self.max is None else max(self.max, other.max)

    def percentile(self, p):
        """Nearest-rank p-th percentile (0 < p <= 100), to PRECISION."""
        if not self.count:
            return None
        rank = max(int(np.ceil(p / 100.0 * self.count)), 1)
        bucket = int(np.searchsorted(np.cumsum(self.counts), rank))
        return min(int(bucket_bounds(bucket)[1]), self.max)

    def summary(self):
        """{p50, p90, p99, p99.9, p99.99, max, mean, min, count} in ns, as results.json holds them."""
        out = {name: self.percentile(p) for name, p in PERCENTILES.items()}
        out["max"] = self.max
        out["mean"] = self.total / self.count if self.count else None
        out["min"] = self.min
        out["count"] = self.count
        return out

    def cdf(self, points=200):
        """[[value_ns, fraction <= value], …] over occupied buckets, thinned to about `points`."""
        occupied = np.flatnonzero(self.counts)
        if not occupied.size:
            return []
        fraction = np.cumsum(self.counts[occupied]) / self.count
        value = np.minimum(bucket_bounds(occupied)[1], self.max)
        keep = np.unique(np.linspace(0, occupied.size - 1, min(points, occupied.size)).astype(int))
        return [[int(value[k]), float(fraction[k])] for k in keep]
