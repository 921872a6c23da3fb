"""The first bulk_load of a process against the next ones: what importing and first use cost.

    python -m bench.cold [--n 1000000] [--processes 5] [--flow off]

The n lognormal keys are written once to a .npy file; each of --processes
fresh interpreters reads them (as a program loads its key file: no other
work has warmed its heap or imported more of numpy), imports nfl, times its
first bulk_load of them (cold: lazy imports, page faults, any JIT), then two
more (warm; the faster is kept).  Prints each process's figures and the
median cold/warm ratio, by wall clock and by the process's CPU time (user +
system, page faults included: on a loaded machine the wall clock also counts
the time other processes ran); the README's bound is 1.2.  The minor page
faults and the system time of the cold load and of the last warm one are
shown too: fresh pages (a fault and a zeroing each, system time) are most of
what a first load pays extra.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from . import COMMAND, workloads

usage = workloads("usage")

CHILD = """
import json, resource, sys, time
import numpy as np
keys, flow = np.load(sys.argv[1]), sys.argv[2]
start = time.perf_counter()
import nfl
imported = time.perf_counter() - start
times, cpu, system, faults = [], [], [], []
for _ in range(3):
    r, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    nfl.Index.bulk_load(keys, flow=flow)
    times.append(time.perf_counter() - t)
    r2 = resource.getrusage(resource.RUSAGE_SELF)
    cpu.append(r2.ru_utime + r2.ru_stime - r.ru_utime - r.ru_stime)
    system.append(r2.ru_stime - r.ru_stime)
    faults.append(r2.ru_minflt - r.ru_minflt)
warm = 1 + min(range(2), key=lambda i: cpu[1 + i])
print(json.dumps({"import": imported, "cold": times[0], "warm": min(times[1:]),
                  "cold_cpu": cpu[0], "warm_cpu": cpu[warm], "cold_sys": system[0], "warm_sys": system[warm],
                  "cold_faults": faults[0], "warm_faults": faults[-1],
                  "modules": sorted(m for m in ("numba", "torch", "llvmlite", "numpy.ma") if m in sys.modules)}))
"""


def lognormal_keys(n):
    """n unique lognormal uint64 keys, shuffled (the same keys every run)."""
    raw = np.sort((np.random.default_rng(1).lognormal(0, 2, n + n // 8) * 1e9).astype(np.uint64))
    keys = raw[np.concatenate(([True], raw[1:] != raw[:-1]))][:n]
    np.random.default_rng(2).shuffle(keys)
    return keys


def parser():
    """The command line: every option with its help."""
    ap = usage.Parser(prog=f"{COMMAND}.cold", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=usage.positive, default=1_000_000, help="lognormal keys per bulk_load")
    ap.add_argument("--processes", type=usage.positive, default=5, help="fresh processes; the median is shown")
    ap.add_argument("--flow", default="off", choices=["off", "auto", "on"], help="flow= of bulk_load")
    return ap


def main(argv=None):
    """Exit status 0; 2 for a mistake in the command line."""
    args = parser().parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "keys.npy")
        np.save(path, lognormal_keys(args.n))
        for _ in range(args.processes):
            out = subprocess.run([sys.executable, "-c", CHILD, path, args.flow],
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout))
            r = runs[-1]
            print(f"import nfl {r['import'] * 1e3:6.1f} ms; bulk_load cold {r['cold']:.3f} s, warm {r['warm']:.3f} s, "
                  f"ratio {r['cold'] / r['warm']:.2f} (CPU time {r['cold_cpu'] / r['warm_cpu']:.2f}); "
                  f"system time {r['cold_sys'] * 1e3:.0f} ms cold, {r['warm_sys'] * 1e3:.0f} ms warm; "
                  f"page faults {r['cold_faults']:,} cold, {r['warm_faults']:,} warm; "
                  f"loaded: {', '.join(r['modules']) or 'none of numba, torch, numpy.ma'}")
    ratio = statistics.median(r["cold"] / r["warm"] for r in runs)
    cpu = statistics.median(r["cold_cpu"] / r["warm_cpu"] for r in runs)
    warm = statistics.median(r["warm"] for r in runs)
    warm_cpu = statistics.median(r["warm_cpu"] for r in runs)
    print(f"{args.n:,} keys, flow={args.flow}: median cold/warm {ratio:.2f} wall clock, {cpu:.2f} CPU time, "
          f"over {args.processes} processes; median warm load {warm:.3f} s ({warm_cpu:.3f} s CPU), "
          f"median import nfl {statistics.median(r['import'] for r in runs) * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
