"""Runs indexes over op streams on each path and turns the timings into run records.

The paths: `batch` (the stream in batches through the index's batch API; for
nfl the native executor's fused batches), `per-op-native` (one op at a time
in C, nothing fused, each op timed alone: nfl and afli) and `per-op` (one Python
call per op).  Each (index, workload, path) is measured in two replays of the
identical stream, each on a freshly loaded index when the stream writes: the
first is timed per batch (throughput and per-batch latency, as the paper
measures), the second per op (latency percentiles), because timing each op
slows the fastest indexes.  Every read is checked against the stream in both.
"""
import time
from dataclasses import dataclass

import numpy as np

from . import perop
from .adapters import NotApplicable
from .check import as_results, verify
from .histogram import Histogram
from .ops import NAMES, WRITES, present

NATIVE = "per-op-native"
PATHS = ("batch", NATIVE, "per-op")


@dataclass
class Workload:
    """An op stream and the names it is reported under."""

    name: str
    dataset: str
    stream: object  # workloads.stream.OpStream or any object with its arrays


def segments(n, batch, parts=50):
    """About `parts` consecutive (start, end) ranges covering n ops, cut at batch boundaries."""
    step = max(batch, -(-n // parts) // batch * batch)
    return [(s, min(s + step, n)) for s in range(0, n, step)]


def replay(adapter, stream, path, batch, time_ops, advance=lambda k: None):
    """Replays the whole stream on the loaded adapter; returns (batch_ns, op_ns or None).

    Per batch of `batch` ops when time_ops is false, else per op; raises
    Mismatch on the first wrong read."""
    n = len(stream.op)
    batch_ns = np.zeros(-(-n // batch))
    op_ns = np.zeros(n) if time_ops else None
    if path != "per-op":
        run = adapter.native_pass if path == NATIVE else adapter.batch_pass
        for s, e in segments(n, batch):
            run(stream, s, e, batch, batch_ns, op_ns)
            advance(e - s)
        return batch_ns, op_ns
    handlers, cols = adapter.handlers(), perop.columns(stream)
    chunk = 1 if time_ops else batch
    times, got = [0] * -(-n // chunk), [None] * n
    for s, e in segments(n, batch):
        perop.run(handlers, cols, s, e, chunk, times, got)
        verify(adapter.name, path, stream, s, as_results(got[s:e]))
        advance(e - s)
    times = np.array(times, dtype=np.float64)
    if time_ops:  # batches as the sums of their timed ops
        return np.add.reduceat(times, np.arange(0, n, batch)) if n else batch_ns, times
    return times, None


def _methods(adapter, path, batch, timers):
    """How throughput and latency were measured, in words, for the report."""
    if path == "per-op":
        return (
            f"one Python call per op, perf_counter_ns per {batch} ops",
            f"second replay, perf_counter_ns around each op (includes its "
            f"{timers['python']['overhead_ns']:.0f} ns overhead)",
        )
    overhead = (timers.get("native") or {}).get("overhead_ns", 0.0)
    if path == NATIVE:
        return adapter.native_method.format(batch=batch), adapter.native_latency.format(overhead=overhead)
    return adapter.batch_method.format(batch=batch), adapter.batch_latency.format(overhead=overhead)


def _per_op_from_batches(stream, batch, batch_ns):
    """Per-op latency derived from batch times: each op gets its batch's mean."""
    n = len(stream.op)
    sizes = np.minimum(batch, n - np.arange(len(batch_ns)) * batch)
    return np.repeat(batch_ns / sizes, sizes)


def by_op_type(stream, op_ns):
    """{op type name: latency summary} of the op types in the stream."""
    return {NAMES[c]: Histogram.of(op_ns[stream.op == c]).summary() for c in present(stream)}


def net_of_timer(stream, op_ns, overhead_ns):
    """Figures of ops each timed alone, less the timer's own cost (one counter read), floored at 0."""
    return {"timer_overhead_ns": overhead_ns,
            "latency_net_ns": by_op_type(stream, np.maximum(op_ns - overhead_ns, 0.0))}


def latency_record(stream, op_ns, batch, batch_ns):
    """Latency figures of one run: per op type, all ops (with a CDF), and per batch."""
    overall = Histogram.of(op_ns)
    full = batch_ns[: len(stream.op) // batch] if len(stream.op) >= batch else batch_ns
    return {
        "latency_ns": by_op_type(stream, op_ns),
        "latency_all_ns": overall.summary(),
        "latency_cdf_ns": overall.cdf(),
        "batch_latency_ns": Histogram.of(full).summary(),
    }


def measure(adapter, workload, path, batch, timers, steps, repeat=1):
    """One run record for (adapter, workload, path); status n/a when it cannot run.

    The throughput replay runs `repeat` times; the record keeps the median
    (and every figure), its batch latencies, then one per-op-timed replay."""
    stream = workload.stream
    n = len(stream.op)
    record = {"index": adapter.name, "label": adapter.label, "workload": workload.name,
              "dataset": workload.dataset, "path": path, "ops": n, "batch": batch}
    try:
        adapter.check(stream, path)
    except NotApplicable as why:
        return {**record, "status": f"n/a: {why}", "throughput_ops_s": None, "latency_ns": {}}

    writes = bool(set(present(stream)) & WRITES)
    steps.status(f"{adapter.name}: loading {len(stream.load_keys):,} keys")
    t0 = time.perf_counter()
    adapter.load(stream.load_keys, stream.load_values)
    load_s = time.perf_counter() - t0
    info = adapter.info()

    def fresh():
        if writes:
            steps.status(f"{adapter.name}: reloading for the next replay")
            adapter.load(stream.load_keys, stream.load_values)

    replays = []
    for r in range(repeat):
        if r:
            fresh()
        title = f"{adapter.name} {path}: throughput {r + 1}/{repeat}"
        replays.append(replay(adapter, stream, path, batch, False, steps.ops(title, n))[0])
    totals = [b.sum() for b in replays]
    batch_ns = replays[int(np.argsort(totals)[len(totals) // 2])]  # the median replay
    if path == "batch" and not adapter.batch_times_ops:
        op_ns = _per_op_from_batches(stream, batch, batch_ns)
    else:
        fresh()
        _, op_ns = replay(adapter, stream, path, batch, True, steps.ops(f"{adapter.name} {path}: latency", n))
    throughput_method, latency_method = _methods(adapter, path, batch, timers)
    net = net_of_timer(stream, op_ns, timers["native"]["overhead_ns"]) if path == NATIVE else {}
    return {
        **record,
        "status": "ok",
        "throughput_ops_s": n / (batch_ns.sum() * 1e-9),
        "throughput_all_ops_s": [n / (t * 1e-9) for t in totals],
        **latency_record(stream, op_ns, batch, batch_ns),
        **net,
        "method": {"throughput": throughput_method + (f"; median of {repeat} replays" if repeat > 1 else ""),
                   "latency": latency_method},
        "load_s": load_s,
        "index_info": info,
    }


def run_all(adapters, workloads, batch, timers, steps, paths=PATHS, repeat=1):
    """Run records for every (workload, adapter, path), in that order."""
    runs = []
    for workload in workloads:
        for adapter in adapters:
            for path in paths:
                steps.begin(f"{workload.dataset} · {workload.name} · {adapter.name} · {path}")
                runs.append(measure(adapter, workload, path, batch, timers, steps, repeat))
                steps.done()
    return runs
