"""Reports of a results dict: console table (rich), results.json, report.md, YCSB text, plots."""
import json

from rich.table import Table

from . import plots
from .histogram import PERCENTILES
from .ops import NAMES

TABLE_PERCENTILES = ("p50", "p99", "p99.9")


def _ordered(values):
    return list(dict.fromkeys(values))


def groups(results):
    """[((dataset, workload), runs)] in the order they ran."""
    runs = results["runs"]
    keys = _ordered((r["dataset"], r["workload"]) for r in runs)
    return [(k, [r for r in runs if (r["dataset"], r["workload"]) == k]) for k in keys]


def _op_types(runs):
    return [name for name in NAMES if any(name in r["latency_ns"] for r in runs)]


def _ns(x):
    return "–" if x is None else f"{x:,.0f}"


def _mops(run):
    return f"{run['throughput_ops_s'] / 1e6:.2f}" if run["status"] == "ok" else "n/a"


def _net(run):
    """'READ 250 / 400 / 900' per op type: the percentiles less the timer's own cost."""
    return "; ".join(f"{op} " + " / ".join(_ns(s[p]) for p in TABLE_PERCENTILES)
                     for op, s in run["latency_net_ns"].items())


def _note(run):
    """How the run's per-op latencies were had, in a few words (n/a: why not)."""
    if run["status"] != "ok":
        return run["status"][len("n/a: "):]
    kind = plots.latency_kind(run)
    if kind == "alone":
        return (f"each op run and timed alone in C, nothing fused or shared; includes one counter read "
                f"({run['timer_overhead_ns']:.0f} ns); less it: {_net(run)}")
    notes = {"derived": "per-op latency derived", "shared": "fused passes' time shared equally"}
    return notes.get(kind, "")


def _rows(runs):
    """Cells per run: index, path, Mops/s, 'p50 / p99 / p99.9' per op type, batch p99 (µs), note."""
    ops = _op_types(runs)
    for r in runs:
        lat = [" / ".join(_ns(r["latency_ns"][op][p]) for p in TABLE_PERCENTILES) if op in r["latency_ns"] else "–"
               for op in ops]
        batch = r.get("batch_latency_ns", {}).get("p99")
        yield [r["index"], r["path"], _mops(r), *lat, "–" if batch is None else f"{batch / 1e3:,.1f}", _note(r)]


def _header(runs):
    ops = _op_types(runs)
    batch = runs[0]["batch"]
    return ["index", "path", "Mops/s", *[f"{op} ns p50/p99/p99.9" for op in ops], f"batch({batch}) p99 µs", "note"]


def console_tables(results):
    """One rich Table per (dataset, workload)."""
    tables = []
    for (dataset, workload), runs in groups(results):
        t = Table(title=f"{dataset} · {workload} · {runs[0]['ops']:,} ops", title_justify="left")
        for i, h in enumerate(_header(runs)):
            t.add_column(h, justify="left" if i < 2 or h == "note" else "right", overflow="fold")
        for row in _rows(runs):
            t.add_row(*row, style="dim" if row[2] == "n/a" else None)
        tables.append(t)
    return tables


def _pct_label(p):
    value = PERCENTILES[p]
    return f"{value:g}th" if value == int(value) else f"{value:g}"


def ycsb_text(results):
    """Every run in YCSB's output style (`[READ], 99thPercentileLatency(us), …`)."""
    lines = []
    for r in results["runs"]:
        lines.append(f"# index={r['index']} path={r['path']} workload={r['workload']} dataset={r['dataset']}")
        if r["status"] != "ok":
            lines += [f"# {r['status']}", ""]
            continue
        lines.append(f"[OVERALL], RunTime(ms), {r['ops'] / r['throughput_ops_s'] * 1e3:.3f}")
        lines.append(f"[OVERALL], Throughput(ops/sec), {r['throughput_ops_s']:.1f}")
        for op, s in r["latency_ns"].items():
            lines.append(f"[{op}], Operations, {s['count']}")
            lines.append(f"[{op}], AverageLatency(us), {s['mean'] / 1e3:.3f}")
            lines.append(f"[{op}], MinLatency(us), {s['min'] / 1e3:.3f}")
            lines.append(f"[{op}], MaxLatency(us), {s['max'] / 1e3:.3f}")
            for p in PERCENTILES:
                lines.append(f"[{op}], {_pct_label(p)}PercentileLatency(us), {s[p] / 1e3:.3f}")
            lines.append(f"[{op}], Return=OK, {s['count']}")
        lines.append("")
    return "\n".join(lines)


def _md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def markdown(results, plot_paths):
    """report.md: what ran where, how it was measured, tables and plots."""
    m, v, t = results["machine"], results["versions"], results["timer"]
    md = [
        "# nfl benchmark report",
        "",
        f"Command: `{results['command']}`  ",
        f"Created: {results['created']}  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {(m['memory_bytes'] or 0) / 2**30:.1f} GiB, {m['os']}; "
        f"load average at start {m.get('load_average')}  ",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + "  ",
        f"Seeds: {results['seeds']}; batch size {results['config']['batch']}; throughput: median of "
        f"{results['config'].get('repeat', 1)} replay(s)",
        "",
        "## How it was measured",
        "",
        "- **batch path**: nfl and afli replay the op stream in the native executor (C) in fused batches; "
        "peers use their best batch API where they have one (numpy.searchsorted, pandas.Index.get_indexer: "
        "vectorized lookups per batch), else n/a. **per-op-native path** (nfl and afli): the executor runs one "
        "op at a time in C (each key prepared alone, nothing fused or prefetched) and times each op alone "
        "between two cycle-counter reads: the figures to set beside a C++ index timed per op; n/a for peers, "
        "whose single ops are Python calls. **per-op path**: one Python call per op, for every index.",
        "- Each run replays the identical stream twice, on a freshly loaded index each time when the stream "
        "writes: once timed per batch (throughput, per-batch latency), once timed per op (latency percentiles).",
        f"- Native cycle counter: {t['native']['ticks_per_ns']:.3f} ticks/ns, one read costs "
        f"{t['native']['overhead_ns']:.1f} ns (the median gap between back-to-back reads; included in each "
        "per-op latency, not subtracted; for the per-op-native path, `latency_net_ns` in results.json and the "
        "table's note subtract it). On the batch path a batch of reads only executes as one fused batch lookup; "
        "its ops share its time equally. Any other batch prepares all its keys in one fused pass (its time "
        "shared equally), then times each op."
        if t.get("native") else "- Native executor: not available in this build.",
        f"- Python per-op timer (perf_counter_ns): {t['python']['overhead_ns']:.0f} ns per back-to-back pair "
        "(included, not subtracted).",
        "- Percentiles are nearest-rank from an HDR-style histogram (3 significant digits); every read "
        "was checked against the stream's expected value.",
        "",
    ]
    for (dataset, workload), runs in groups(results):
        md += [f"## {dataset} · {workload} ({runs[0]['ops']:,} ops)", "", _md_table(_header(runs), _rows(runs)), ""]
        info = {r["index"]: r["index_info"] for r in runs if r.get("index_info") and r["path"] == "batch"}
        if info:
            md += [f"Index facts: {json.dumps(info)}", ""]
    md += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plot_paths] + [""]
    return "\n".join(md)


def write(results, out_dir, console=None):
    """Writes results.json, ycsb.txt, the plots and report.md to out_dir; prints the tables."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    (out_dir / "ycsb.txt").write_text(ycsb_text(results))
    plot_paths = plots.write(results, out_dir)
    (out_dir / "report.md").write_text(markdown(results, plot_paths))
    if console is not None:
        for table in console_tables(results):
            console.print(table)
    return plot_paths
