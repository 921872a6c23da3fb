"""Command line: `python -m bench quick | run | paper | report`."""
import datetime
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from . import COMMAND, workloads

usage = workloads("usage")
usage.require(["rich", "numba", "matplotlib", "sortedcontainers"], "bench", COMMAND)

from rich.console import Console  # noqa: E402  (the extra checked first)
from rich.panel import Panel  # noqa: E402

from . import adapters, machine, native, perop, records, report, runner  # noqa: E402
from .check import Mismatch
from .ops import NAMES
from .progress import Steps

QUICK_WORKLOADS = ("workloadc", "workloada")  # read-only, and 50 % reads / 50 % updates
QUICK_OPS = 100_000
PAPER_DATASETS = ("lognormal", "normal", "uniform", "clustered")
PAPER_WORKLOADS = ("paper-R100", "paper-R80", "paper-R20", "paper-R0")


def _csv(text):
    return [part for part in text.split(",") if part]


def _load_keys(args):
    """[(dataset name, keys, facts)] from --keys files (deduplicated, counted) or --dataset names."""
    if args.keys:
        sosd = workloads("sosd")

        out = []
        for path in args.keys:
            keys, dups = sosd.read_unique(path)
            if dups:
                print(f"{path}: dropped {dups:,} duplicate keys", file=sys.stderr)
            out.append((Path(path).name, keys, {"file": str(path), "duplicates_removed": int(dups)}))
        return out
    datasets = workloads("datasets")

    return [(name, datasets.load(name, n=args.n, seed=args.seed), {"n_requested": args.n}) for name in args.dataset]


def _overrides(pairs):
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep:
            raise usage.UsageError(f"-p expects key=value, got {pair!r}")
        out[key] = value
    return out


def _stream_overrides(spec, pairs):
    """-p overrides for a YCSB file; recordcount defaults to 0 (load the whole dataset, less the
    keys held out for inserts), since the dataset, not the file's placeholder, sets the size."""
    if spec.startswith("paper-"):
        return None
    return {"recordcount": "0", **_overrides(pairs)}


def _workload_name(spec):
    return Path(spec).name


def _build_streams(keyed, specs, args, console):
    """Workloads for every (dataset, workload spec), each built once with the run's seed; with
    --values records|bytes, their values are YCSB records (built on first use, freed after)."""
    stream = workloads("stream")
    valued = workloads("records").RecordStream if args.values != "int" else None

    out = []
    with console.status("building op streams") as status:
        for dataset, keys, _ in keyed:
            for spec in specs:
                status.update(f"building op stream {dataset} · {_workload_name(spec)}")
                s = stream.build(spec, keys, args.seed, overrides=_stream_overrides(spec, args.p),
                                 n_ops=args.ops, dataset=dataset)
                name = _workload_name(spec)
                if valued is not None:
                    s = valued(s, args.values)
                    name = f"{name}, {s.describe()}"
                out.append(runner.Workload(name, dataset, s))
    return out


def _timers():
    try:
        native_timer = native.timer()
    except ImportError:
        native_timer = None
    return {"native": native_timer, "python": {"overhead_ns": perop.timer_overhead_ns()}}


def _workload_facts(w):
    counts = np.bincount(w.stream.op, minlength=len(NAMES))
    return {"name": w.name, "dataset": w.dataset, "ops": int(len(w.stream.op)),
            "loaded_keys": int(len(w.stream.load_keys)), "key_dtype": str(w.stream.load_keys.dtype),
            "op_counts": {NAMES[c]: int(k) for c, k in enumerate(counts) if k},
            "values": w.stream.describe() if hasattr(w.stream, "describe") else "int64",
            "meta": json.loads(json.dumps(w.stream.meta, default=str))}


def check_inputs(args, specs):
    """The chosen adapters; UsageError for an unknown index, data set or workload, a missing
    key file or data set, or a bad -p, before any key is read."""
    datasets, stream = workloads("datasets"), workloads("stream")
    try:
        for name in args.dataset or ():
            datasets.source(name)
        for spec in specs:
            stream.check_workload(spec)
        _overrides(args.p)
        unknown = [p for p in args.paths if p not in runner.PATHS]
        if unknown or not args.paths:
            raise ValueError(f"unknown path {unknown}; choose from {','.join(runner.PATHS)}")
        if args.values == "int":
            args.indexes = args.indexes or list(adapters.ALL)
            return adapters.make(args.indexes, shards=args.shards)
        args.indexes = args.indexes or list(records.ALL)
        return records.make(args.indexes)
    except (ValueError, FileNotFoundError) as mistake:
        raise usage.UsageError(str(mistake)) from None


def execute(args, specs, out, console, chosen):
    """Builds the streams, runs every chosen index over them, writes and prints the report."""
    keyed = _load_keys(args)
    streams = _build_streams(keyed, specs, args, console)
    timers = _timers()
    paths = args.paths
    with Steps(len(streams) * len(chosen) * len(paths), console) as steps:
        runs = runner.run_all(chosen, streams, args.batch, timers, steps, paths, args.repeat)
    results = {
        "command": shlex.join([Path(sys.executable).name, "-m", __package__, *sys.argv[1:]]),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine.machine(),
        "versions": machine.versions(),
        "timer": timers,
        "seeds": {"dataset": args.seed, "stream": args.seed},
        "config": {"batch": args.batch, "ops": args.ops, "n": args.n, "indexes": args.indexes, "repeat": args.repeat,
                   "values": args.values,
                   "shards": args.shards, "paths": list(paths), "overrides": _overrides(args.p)},
        "datasets": [{"name": name, "keys": int(len(keys)), "key_dtype": str(keys.dtype), **facts}
                     for name, keys, facts in keyed],
        "workloads": [_workload_facts(w) for w in streams],
        "runs": runs,
    }
    _finish(results, out, console)


def _finish(results, out, console):
    plot_paths = report.write(results, out, console)
    console.print(f"\nReport: [bold]{out / 'report.md'}[/]\nResults: {out / 'results.json'}   "
                  f"YCSB text: {out / 'ycsb.txt'}\nPlots: " + ", ".join(str(p) for p in plot_paths))


def _default_out(kind):
    return Path("results") / f"{kind}-{datetime.datetime.now():%Y%m%d-%H%M%S}"


def _common(p, ops_default=None):
    p.add_argument("--indexes", type=_csv, default=None,
                   help=f"comma-separated, from {','.join(adapters.ALL)} (the default) "
                        "(and btrees, pandas; nfl-noprefetch, afli-noprefetch: the tuned lookup path off; "
                        f"nfl-cluster: Ray shards, see --shards); object values: {','.join(records.ALL)} "
                        "(the default; others n/a)")
    p.add_argument("--values", choices=("int", "records", "bytes"), default="int",
                   help="stored values: int64 (default); records: YCSB records as tuples of fieldcount bytes "
                        "objects of fieldlength bytes (-p fieldcount=10 -p fieldlength=100, YCSB's defaults); "
                        "bytes: one fieldcount*fieldlength-byte bytes object")
    p.add_argument("--paths", type=_csv, default=list(runner.PATHS),
                   help=f"comma-separated, from {','.join(runner.PATHS)} (default: all): batch = the index's "
                        "batch API (nfl: fused native batches); per-op-native = one op at a time in C, each "
                        "timed alone (nfl, afli); per-op = one Python call per op")
    p.add_argument("--shards", type=usage.positive, default=2, help="shards of nfl-cluster (Ray actors on this machine)")
    p.add_argument("--ops", type=usage.positive, default=ops_default, help="ops per stream (default: the workload's)")
    p.add_argument("--batch", type=usage.positive, default=256, help="ops per batch (paper: 256)")
    p.add_argument("--seed", type=int, default=1, help="seed of the dataset and the op streams")
    p.add_argument("--repeat", type=usage.positive, default=1, help="throughput replays per run; the median is reported")
    p.add_argument("--n", type=usage.positive, default=None, help="keys in the dataset (default: the dataset's)")
    p.add_argument("-p", action="append", metavar="KEY=VALUE",
                   help="YCSB property override, repeatable (recordcount defaults to 0: the whole dataset)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: results/<command>-<time>)")


def parser():
    """The command line of every subcommand."""
    ap = usage.Parser(prog=COMMAND, description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    quick = sub.add_parser("quick", help="small end-to-end run on the embedded dataset, < 1 minute")
    _common(quick, QUICK_OPS)
    run = sub.add_parser("run", help="indexes × workloads on one or more key sets")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=_csv, help="dataset names (comma-separated)")
    source.add_argument("--keys", action="append", type=usage.existing_file, help="SOSD key file, repeatable")
    run.add_argument("--workload", action="append", required=True, type=_csv,
                     help="YCSB property file or name (workloada…f) or paper-R100|R80|R20|R0; "
                          "comma-separated or repeated")
    _common(run)
    paper = sub.add_parser("paper", help="the paper's grid: datasets × read fractions 100/80/20/0 × indexes")
    paper.add_argument("--datasets", type=_csv, default=list(PAPER_DATASETS), help="dataset names (comma-separated)")
    _common(paper)
    rerender = sub.add_parser("report", help="re-render the reports of a results folder from its results.json")
    rerender.add_argument("dir", type=Path, help="a results folder written by quick, run or paper")
    return ap


def main(argv=None):
    """Exit status: 0 done, 1 a wrong result (the run is invalid), 2 a mistake in the command line."""
    args = parser().parse_args(argv)
    return usage.run(_main, args, COMMAND)


def _main(args):
    console = Console(width=None if sys.stdout.isatty() else 160)  # wide tables when piped
    if args.command == "report":
        results = args.dir / "results.json"
        if not results.is_file():
            raise usage.UsageError(f"{results} does not exist: give a folder written by {COMMAND} quick, run or paper")
        _finish(json.loads(results.read_text()), args.dir, console)
        return 0
    if args.command == "quick":
        args.dataset, args.keys, specs = ["default"], None, list(QUICK_WORKLOADS)
    elif args.command == "paper":
        args.dataset, args.keys, specs = args.datasets, None, list(PAPER_WORKLOADS)
    else:
        specs = [w for group in args.workload for w in group]
    chosen = check_inputs(args, specs)
    out = args.out or _default_out(args.command)
    try:
        execute(args, specs, out, console, chosen)
    except Mismatch as wrong:
        console.print(Panel(str(wrong), title="WRONG RESULT: the run is invalid", style="bold red"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
