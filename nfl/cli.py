"""The nfl command: train a flow, analyze conflict degrees before and after it, inspect an index.

    nfl train KEYS_FILE -o FLOW_FILE [--sample F] [--epochs N] [--seed S]
    nfl analyze KEYS_FILE [--flow FLOW_FILE] [--plot out.png]
    nfl info INDEX_FILE

Key files are SOSD format (a little-endian uint64 count, then the keys); the
name's suffix (_uint64, _int64, _float64) or --key-dtype gives the key type.
Exit status: 0 done, 1 a file or run that failed (one-line message), 2 a bad
command line (one-line message; every numeric argument is range-checked).
"""
import argparse
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

_SUFFIX = re.compile(r"_(uint64|int64|float64)(\.[A-Za-z0-9]+)?$")
_MAX_SLOTS = 2**32  # what analyze may count conflicts over (8 bytes a slot)


def _bounded(kind, lo, hi, lo_open=False):
    """An argparse type: a finite int or float within [lo, hi] ((lo, hi] with lo_open)."""
    def parse(text):
        try:
            x = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an int' if kind is int else 'a number'}") from None
        if not math.isfinite(x) or x < lo or x > hi or (lo_open and x == lo):
            left = "(" if lo_open else "["
            raise argparse.ArgumentTypeError(f"{text} is out of range {left}{lo}, {hi}]")
        return x

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error ("nfl train: error: ...") and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def read_keys(path, dtype=None):
    """(sorted unique keys, duplicates removed) of an SOSD key file."""
    path = Path(path)
    if dtype is None:
        m = _SUFFIX.search(path.name)
        if not m:
            raise ValueError(f"{path}: name must end in _uint64, _int64 or _float64, or pass --key-dtype")
        dtype = m.group(1)
    size = path.stat().st_size
    if size < 8:
        raise ValueError(f"{path}: too short for an SOSD key file")
    with open(path, "rb") as f:
        count = int(np.frombuffer(f.read(8), dtype="<u8")[0])
    if size != 8 + 8 * count:
        raise ValueError(f"{path}: header says {count:,} keys but the file holds {(size - 8) / 8:,.1f}")
    keys = np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=8)
    keys = keys.astype(np.dtype(dtype))
    if keys.dtype.kind == "f" and np.isnan(keys).any():
        raise ValueError(f"{path}: NaN keys")
    unique = np.unique(keys)
    return unique, keys.size - unique.size


def _load(args):
    keys, dups = read_keys(args.keys, args.key_dtype)
    note = f" ({dups:,} duplicates removed)" if dups else ""
    print(f"{args.keys}: {keys.size:,} {keys.dtype} keys{note}")
    return keys


def cmd_train(args) -> int:
    from nfl.flow import Flow

    keys = _load(args)
    start = time.perf_counter()
    flow = Flow.train(keys, sample=args.sample, epochs=args.epochs, seed=args.seed, progress=not args.quiet)
    flow.save(args.output)
    print(f"{flow!r} trained in {time.perf_counter() - start:.1f} s on {flow.meta.get('sample', 0):,} sampled keys; "
          f"saved to {args.output}")
    return 0


def _check_slots(n, amplification):
    """ValueError if counting conflicts over n keys at this amplification needs too many slots."""
    if amplification * n > _MAX_SLOTS:
        raise ValueError(f"amplification {amplification:g} over {n:,} keys is {amplification * n:,.0f} slots; "
                         f"at most {_MAX_SLOTS:,} (lower --amplification)")


def cmd_analyze(args) -> int:
    from nfl import conflicts

    keys = _load(args)
    _check_slots(keys.size, args.amplification)
    flow = _analysis_flow(args, keys)
    rows = [("raw keys", None)]
    if flow is not None:
        rows.append((f"flow ({flow.feature}, {flow.bins:,} bins)", flow))
    print(f"conflict degrees of a linear model, amplification {args.amplification:g}")
    print(f"{'':32s} {'max':>8s} {'p99':>8s} {'mean':>8s} {'distinct':>9s}")
    stats = []
    for name, f in rows:
        s = conflicts.conflict_stats(keys, f, args.amplification)
        stats.append(s)
        print(f"{name:32s} {s.max:8d} {s.p99:8.1f} {s.mean:8.3f} {s.distinct_fraction:9.3f}")
    if len(stats) == 2 and stats[1].p99 > 0:
        print(f"tail conflicts (p99) lowered {stats[0].p99 / stats[1].p99:.1f}x")
    if args.plot:
        _plot(args.plot, keys, rows, args.amplification)
        print(f"plot written to {args.plot}")
    return 0


def _analysis_flow(args, keys):
    """The flow of --flow, else one trained here when torch is available, else None."""
    from nfl.flow import Flow

    if args.flow:
        return Flow.load(args.flow)
    try:
        return Flow.train(keys, seed=args.seed, progress=not args.quiet)
    except ImportError as exc:
        print(f"no flow: {exc}", file=sys.stderr)
        return None


def _plot(path, keys, rows, amplification):
    """Key CDF before and after the flow, and conflicts per slot (max over groups of slots)."""
    import matplotlib

    from nfl import conflicts

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(rows), figsize=(5 * (1 + len(rows)), 4))
    for name, f in rows:
        z = keys.astype(np.float64) if f is None else f.transform(keys)
        span = z[-1] - z[0]
        pick = np.linspace(0, z.size - 1, min(z.size, 4000)).astype(np.int64)
        axes[0].plot((z[pick] - z[0]) / (span if span > 0 else 1.0), pick / max(z.size - 1, 1), label=name)
    axes[0].plot([0, 1], [0, 1], ":", color="gray", label="uniform")
    axes[0].set(title="key CDF (normalized range)", xlabel="normalized key / z", ylabel="fraction of keys")
    axes[0].legend()
    for ax, (name, f) in zip(axes[1:], rows):
        ax.sharey(axes[1])
        per_slot = conflicts.per_slot(keys, f, amplification)
        capacity = per_slot.size
        groups = min(capacity, 2000)
        edges = np.linspace(0, capacity, groups + 1).astype(np.int64)
        worst = np.maximum.reduceat(per_slot, edges[:-1])
        ax.semilogy(np.arange(groups) / groups, np.maximum(worst, 0.8), lw=0.8)
        ax.set(title=f"conflicts per slot: {name}", xlabel="slot position (fraction)",
               ylabel=f"max keys per slot in {capacity // groups:,}-slot groups")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cmd_info(args) -> int:
    import nfl

    index = nfl.Index.load(args.index)
    for name, value in index.stats().items():
        print(f"{name:22s} {value}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from nfl import __version__

    p = _Parser(prog="nfl", description="Learned index with a numerical normalizing flow.")
    p.add_argument("--version", action="version", version=f"nfl {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def keys_arg(sp):
        sp.add_argument("keys", help="SOSD key file (suffix _uint64, _int64 or _float64)")
        sp.add_argument("--key-dtype", choices=["uint64", "int64", "float64"], help="override the suffix")
        sp.add_argument("--seed", type=_bounded(int, 0, 2**63 - 1), default=0, help="0 <= S < 2**63 (default 0)")
        sp.add_argument("--quiet", action="store_true", help="no progress bar")

    t = sub.add_parser("train", help="train a flow on a key file and save it")
    keys_arg(t)
    t.add_argument("-o", "--output", required=True, help="flow file to write")
    t.add_argument("--sample", type=_bounded(float, 0, 1, lo_open=True), default=0.1,
                   help="fraction of keys to train on, 0 < F <= 1 (default 0.1)")
    t.add_argument("--epochs", type=_bounded(int, 1, 10_000), default=15, help="1 <= N <= 10000 (default 15)")
    t.set_defaults(run=cmd_train)

    a = sub.add_parser("analyze", help="conflict degrees before and after a flow")
    keys_arg(a)
    a.add_argument("--flow", help="flow file (default: train one here)")
    a.add_argument("--plot", help="PNG with the key CDF and per-slot conflicts before/after")
    a.add_argument("--amplification", type=_bounded(float, 0, 1000, lo_open=True), default=2.0,
                   help="slots per key, 0 < A <= 1000 (default 2, as AFLI)")
    a.set_defaults(run=cmd_analyze)

    i = sub.add_parser("info", help="statistics of a saved index")
    i.add_argument("index", help="index file written by Index.save")
    i.set_defaults(run=cmd_info)
    return p


def main(argv=None) -> int:
    """The nfl command on argv (None: sys.argv[1:]); returns the exit status.

    Raises SystemExit 2 (argparse) for a bad command line and 0 for --help or
    --version; an OSError, ValueError, ImportError or MemoryError of the work
    is one line on stderr and status 1, not a traceback.  Cost: that of the
    subcommand (a bulk load, a snapshot read: O(n)).
    """
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (OSError, ValueError, ImportError) as exc:
        print(f"nfl {args.command}: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"nfl {args.command}: out of memory", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
