"""Wall-clock timing of a callable: the one helper the bench tools share."""
import statistics
import time


def samples_ns(fn, repeat):
    """ns of each of repeat calls of fn (perf_counter_ns), in call order."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return times


def median_s(fn, repeat):
    """The median seconds of repeat calls of fn."""
    return statistics.median(samples_ns(fn, repeat)) / 1e9
