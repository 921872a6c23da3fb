"""Cache misses and instructions per lookup, counted by callgrind (no PMU needed).

    python -m bench.layout [--n 300000] [--lookups 100000] [--ll 1048576]

Each variant builds an index over lognormal uint64 keys in a child process
run under valgrind's callgrind with its cache simulator, collecting only
inside nfl_get_many, and reports per lookup: instructions (Ir), data reads,
first-level misses (D1) and last-level misses (LL, simulated at --ll bytes so
that a miss stands for a trip past the core's own caches), then the LL
misses split by what was read: the flow's tables, the slot's kind byte, the
slot, a bucket, a child node's header.  Counts do not depend on machine noise;
prefetches are not loads to callgrind, so the misses are the same with
prefetching on and off and only the instruction count shows its cost.
"""
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import COMMAND, PREFIX, workloads

usage = workloads("usage")

CHILD = r"""
import sys, numpy as np, nfl
from WORKLOADS import datasets
n, lookups, flow, bucket, prefetch = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
keys = datasets.generate("lognormal", n, 1)
rng = np.random.default_rng(1)
idx = nfl.Index.bulk_load(keys, flow=nfl.Flow.load(flow) if flow != "off" else "off",
                          bucket_size=bucket, prefetch=bool(prefetch))
q = keys[rng.integers(0, n, lookups)]
idx.get_many(q)
st = idx.stats()
print("STATS", st["avg_depth"], st["buckets"], st["memory_bytes"])
"""

# What a source line of the descent reads, by the text of the line.
READS = [
    ("kind byte", re.compile(r"kinds\[p->pos\]\)|kinds\[pos\]\)")),
    ("slot", re.compile(r"\b(slot|s)->(entry\.key|bucket;|child;)")),
    ("bucket", re.compile(r"b->count|b->entries\[i\]\.key")),
    ("child header", re.compile(r"nd->dense")),
]
EVENTS = ("Ir", "Dr", "D1mr", "DLmr")


def _run(child, args, n, lookups, ll, out):
    """Runs the child under callgrind; returns (stats line, callgrind output path)."""
    cmd = ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=nfl_get_many",
           "--cache-sim=yes", f"--LL={ll},16,64", f"--callgrind-out-file={out}",
           sys.executable, child, str(n), str(lookups), *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return next(line for line in done.stdout.splitlines() if line.startswith("STATS")).split()[1:]


def _annotate(out):
    """callgrind_annotate's per-line counts: [(counts dict, source text)]."""
    text = subprocess.run(["callgrind_annotate", "--auto=yes", "--show-percs=no",
                           f"--show={','.join(EVENTS)}", out], capture_output=True, text=True, check=True).stdout
    rows, totals = [], None
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,.]+)\s+([\d,.]+)\s+([\d,.]+)\s+([\d,.]+)\s+(.*)$", line)
        if not m:
            continue
        counts = dict(zip(EVENTS, (0 if c == "." else int(c.replace(",", "")) for c in m.groups()[:4])))
        if totals is None and "PROGRAM TOTALS" in m.group(5):
            totals = counts
        rows.append((counts, m.group(5)))
    return totals, rows


def _breakdown(rows):
    """LL misses by what was read: lines of batch.c matched by READS, plus the flow's function."""
    split = dict.fromkeys([name for name, _ in READS] + ["flow tables"], 0)
    for counts, text in rows:
        if "nfl_flow_transform" in text and "flow.c:" in text:
            split["flow tables"] = counts["DLmr"]
            continue
        for name, pattern in READS:
            if pattern.search(text):
                split[name] += counts["DLmr"]
    return split


def parser():
    """The command line: every option with its help."""
    ap = usage.Parser(prog=f"{COMMAND}.layout", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=usage.positive, default=300_000, help="lognormal keys in the index")
    ap.add_argument("--lookups", type=usage.positive, default=100_000, help="random lookups (one get_many) per variant")
    ap.add_argument("--ll", type=usage.positive, default=1 << 20, help="simulated last-level cache, bytes")
    return ap


def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        ap.error("valgrind is needed (its callgrind tool counts the misses): install it, e.g. apt-get install valgrind")
    if importlib.util.find_spec("torch") is None:
        ap.error('training the flow needs PyTorch: pip install "nfl[train]"')

    import nfl

    datasets = workloads("datasets")
    keys = datasets.generate("lognormal", args.n, 1)
    with tempfile.TemporaryDirectory() as tmp:
        flow_path = str(Path(tmp) / "flow.nfl")
        flow = nfl.Flow.train(keys, progress=False)
        flow.save(flow_path)
        child = str(Path(tmp) / "child.py")
        Path(child).write_text(CHILD.replace("WORKLOADS", f"{PREFIX}workloads"))
        variants = [("flow, bucket 3, prefetch", (flow_path, 3, 1)),
                    ("flow, bucket 3, no prefetch", (flow_path, 3, 0)),
                    ("flow, bucket 1", (flow_path, 1, 1)),
                    ("flow, bucket 6", (flow_path, 6, 1)),
                    ("no flow, bucket 6", ("off", 6, 1)),
                    ("no flow, bucket 1", ("off", 1, 1))]
        print(f"{args.n:,} lognormal uint64 keys, {args.lookups:,} random lookups (get_many), "
              f"flow of {int(flow.params()[6]):,} bins; LL simulated at {args.ll:,} B; per lookup:")
        head = ("variant", "depth", "B/key", "Ir", "reads", "D1 miss", "LL miss",
                "flow", "kind", "slot", "bucket", "child")
        print("  ".join(f"{h:>8}" if i else f"{h:28}" for i, h in enumerate(head)))
        for name, v in variants:
            out = str(Path(tmp) / f"cg.{len(name)}.{v[1]}.{v[2]}.{v[0] == 'off'}")
            depth, _buckets, memory = _run(child, v, args.n, args.lookups, args.ll, out)
            totals, rows = _annotate(out)
            split = _breakdown(rows)
            per = lambda x: x / args.lookups  # noqa: E731
            cells = [float(depth), int(memory) / args.n, per(totals["Ir"]), per(totals["Dr"]),
                     per(totals["D1mr"]), per(totals["DLmr"]), *(per(split[k]) for k in
                     ("flow tables", "kind byte", "slot", "bucket", "child header"))]
            print(f"{name:28}  " + "  ".join(f"{c:8.2f}" if i < 2 else f"{c:8.1f}" if i < 4 else f"{c:8.3f}"
                                            for i, c in enumerate(cells)))


if __name__ == "__main__":
    main()
