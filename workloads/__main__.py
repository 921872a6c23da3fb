"""The command line: write key files, write op streams, describe either.

    python -m workloads keys --dist lognormal --n 1000000 --seed 1 -o lognormal_1M_uint64
    python -m workloads keys --dataset osm_tzb_s2cells_4M --n 1000000 --seed 1 -o osm_1M_uint64
    python -m workloads ops --workload workloads/ycsb/workloada --keys FILE [-p key=value ...] --seed 1 -o stream.npz
    python -m workloads ops --workload paper-R80 --keys FILE --ops N --seed 1 -o stream.npz
    python -m workloads info FILE
    python -m workloads fetch books|fb|osm|wiki [--dir DIR]

Installed with nfl, the same commands run as ``python -m nfl_workloads ...``.
Exit status: 0 done, 1 a download that did not check out, 2 a mistake in
the command line or its inputs (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import usage

usage.require(["numba"], "analysis", f"python -m {__package__}")

from . import datasets, fetch  # noqa: E402  (numba checked first)
from .sosd import DTYPES, read_unique, write_keys
from .stream import OpStream, build, check_workload


def _parser() -> argparse.ArgumentParser:
    top = usage.Parser(prog=f"python -m {__package__}", description=__doc__.split("\n")[0])
    sub = top.add_subparsers(dest="command", required=True)

    keys = sub.add_parser("keys", help="write an SOSD key file")
    source = keys.add_mutually_exclusive_group(required=True)
    source.add_argument("--dist", choices=list(datasets.DISTRIBUTIONS), help="synthetic distribution")
    source.add_argument("--dataset", help="real key set, 'default', or an SOSD file")
    keys.add_argument("--n", type=usage.positive, help="number of keys (synthetic default 1M; datasets: all)")
    keys.add_argument("--seed", type=int, default=0, help="seed of the draw or the sample")
    keys.add_argument("-o", "--out", required=True, help="output file; the name should end in _uint64 etc.")

    ops = sub.add_parser("ops", help="write an op stream (.npz)")
    ops.add_argument("--workload", required=True, help="YCSB property file, bundled name (workloada) or paper-R100/R80/R20/R0")
    ops.add_argument("--keys", required=True, help="SOSD key file, or a dataset name")
    ops.add_argument("--key-dtype", choices=list(DTYPES), help="key type when the file name has no suffix")
    ops.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a workload property (repeatable)")
    ops.add_argument("--ops", type=usage.positive, help="number of operations (YCSB: overrides operationcount)")
    ops.add_argument("--seed", type=int, default=0, help="seed of the op stream")
    ops.add_argument("-o", "--out", required=True, help="output file (.npz)")

    info = sub.add_parser("info", help="describe a key file or an op stream")
    info.add_argument("file", type=usage.existing_file, help="SOSD key file or op stream (.npz)")
    info.add_argument("--key-dtype", choices=list(DTYPES), help="key type when the file name has no suffix")

    get = sub.add_parser("fetch", help="download a public SOSD key set (200M uint64 keys, 1.6 GB)")
    get.add_argument("name", choices=list(fetch.SETS), help="which set: " + ", ".join(
        f"{k} ({v.file})" for k, v in fetch.SETS.items()))
    get.add_argument("--dir", type=Path, default=None,
                     help="folder to write to (default: $NFL_DATA_DIR, else the folder the real sets are read from)")
    get.add_argument("--url", help="download from this URL instead of Harvard Dataverse (a mirror of the .zst)")
    return top


def _load_keys(source: str, dtype) -> np.ndarray:
    if Path(source).is_file():
        keys, n_dup = read_unique(source, dtype)
    else:
        keys, n_dup = datasets.load_counted(source)
    if n_dup:
        print(f"{source}: removed {n_dup:,} duplicate keys, {len(keys):,} unique keys remain")
    return keys


def _keys(args) -> None:
    if args.dataset:
        datasets.source(args.dataset)
    if args.dist:
        keys, n_dup = datasets.generate(args.dist, args.n or datasets.DEFAULT_SYNTHETIC_N, args.seed), 0
    else:
        keys, n_dup = datasets.load_counted(args.dataset, args.n, args.seed)
    if n_dup:
        print(f"{args.dataset}: removed {n_dup:,} duplicate keys")
    write_keys(args.out, keys)
    print(f"wrote {len(keys):,} {keys.dtype} keys to {args.out}")


def _ops(args) -> None:
    if not Path(args.keys).is_file():
        datasets.source(args.keys)
    check_workload(args.workload)
    keys = _load_keys(args.keys, args.key_dtype)
    wall, cpu = time.perf_counter(), time.process_time()
    stream = build(args.workload, keys, args.seed, args.overrides, args.ops, dataset=args.keys)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"generated {len(stream):,} ops in {wall:.2f} s ({cpu:.2f} s CPU); "
          f"bulk load {len(stream.load_keys):,} keys")
    _describe(stream)
    stream.save(args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:,.1f} MB)")


def _describe(stream: OpStream) -> None:
    for name, count in stream.counts().items():
        if count:
            print(f"  {name:<18} {count:>12,}  {count / max(1, len(stream)):7.2%}")
    for note in stream.meta.get("notes", []):
        print(f"  note: {note}")


def _info(args) -> None:
    if args.file.suffix == ".npz":
        stream = OpStream.load(args.file)
        meta = stream.meta
        print(f"{args.file}: {meta.get('workload')} on {meta.get('dataset')}, seed {meta.get('seed')}: "
              f"{len(stream):,} ops, bulk load {len(stream.load_keys):,} {stream.load_keys.dtype} keys")
        _describe(stream)
        return
    keys, n_dup = read_unique(args.file, args.key_dtype)
    span = f", {keys[0]} .. {keys[-1]}" if len(keys) else ""
    print(f"{args.file}: {len(keys) + n_dup:,} {keys.dtype} keys, {n_dup:,} duplicates{span}")


def _fetch(args) -> int:
    keyset = fetch.SETS[args.name]
    folder = args.dir or datasets.data_dir()
    why_not = fetch.check_can_fetch(keyset, folder)
    if why_not:
        raise usage.UsageError(why_not)
    try:
        fetch.fetch(keyset, folder, args.url)
    except (fetch.FetchError, OSError) as failed:
        print(f"python -m {__package__} fetch: {failed}", file=sys.stderr)
        return 1
    return 0


def _command(args) -> int:
    if args.command == "fetch":
        return _fetch(args)
    try:
        {"keys": _keys, "ops": _ops, "info": _info}[args.command](args)
    except (ValueError, OSError) as mistake:  # a bad name, file or property: the user's to fix
        raise usage.UsageError(str(mistake)) from None
    return 0


def main(argv=None) -> int:
    """Exit status: 0 done, 1 a download that did not check out, 2 a mistake in the command line or inputs."""
    args = _parser().parse_args(argv)
    return usage.run(_command, args, f"python -m {__package__} {args.command}")


if __name__ == "__main__":
    sys.exit(main())
