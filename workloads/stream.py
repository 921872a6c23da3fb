"""Op streams: what to bulk-load, then one row per operation with the value every read must return.

A stream is generated once from a seed and saved as one ``.npz``, so every
index under test replays the identical operations. Semantics the replayer must
follow: UPDATE and READ-MODIFY-WRITE store ``value`` whether or not the key is
present; INSERT keys are never present before; DELETE of an absent key does
nothing; SCAN reads ``scan_len`` entries in key order from the first key
>= ``key``. ``expected`` is exact in stream order: a READ or RMW must see that
value, -1 meaning the key must be absent; it is -1 for every other op.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from nfl._native import lib
from nfl.storage.files import atomic_file

from . import generators as gen
from .properties import core_settings, parse_properties
from .sosd import KEY_DTYPES, dedup

# Op codes: the C executor's (native/executor.h), which replays streams; a code is also its
# position in OP_NAMES and PROPORTION_KEYS.
READ, UPDATE, INSERT, SCAN, RMW, DELETE = (lib.NFL_OP_READ, lib.NFL_OP_UPDATE, lib.NFL_OP_INSERT,
                                           lib.NFL_OP_SCAN, lib.NFL_OP_RMW, lib.NFL_OP_DELETE)
OP_NAMES = ["READ", "UPDATE", "INSERT", "SCAN", "READ-MODIFY-WRITE", "DELETE"]
if (READ, UPDATE, INSERT, SCAN, RMW, DELETE) != tuple(range(len(OP_NAMES))):
    raise ImportError("native/executor.h's op codes must number OP_NAMES in order")
#: Property giving each op's share, in op-code order (YCSB's own order, plus deletes).
PROPORTION_KEYS = ["readproportion", "updateproportion", "insertproportion",
                   "scanproportion", "readmodifywriteproportion", "deleteproportion"]
YCSB_DIR = Path(__file__).resolve().parent / "ycsb"
PAPER_WORKLOADS = ["paper-R100", "paper-R80", "paper-R20", "paper-R0"]
_PAPER = re.compile(r"paper-R(\d{1,3})")
FORMAT = "nfl-workloads-stream/1"

# Independent random sub-streams of one seed.
_S_OPS, _S_SUBSET, _S_ORDER, _S_VALUES, _S_KEYS = range(1, 6)
_ARRAYS = {"load_keys": None, "load_values": np.int64, "op": np.uint8, "key": None,
           "value": np.int64, "scan_len": np.int64, "expected": np.int64}


@dataclass
class OpStream:
    """Arrays of one workload (see the module doc for what each op means) plus ``meta``."""

    load_keys: np.ndarray
    load_values: np.ndarray
    op: np.ndarray
    key: np.ndarray
    value: np.ndarray
    scan_len: np.ndarray
    expected: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        for name, dtype in _ARRAYS.items():
            arr = getattr(self, name)
            want = np.dtype(dtype) if dtype else self.load_keys.dtype
            if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.dtype != want:
                raise ValueError(f"OpStream.{name} must be a 1-D {want} array")
        if self.load_keys.dtype not in KEY_DTYPES:
            raise ValueError(f"keys must be uint64, int64 or float64, not {self.load_keys.dtype}")
        if len(self.load_values) != len(self.load_keys):
            raise ValueError("load_keys and load_values differ in length")
        if len({len(getattr(self, n)) for n in ("op", "key", "value", "scan_len", "expected")}) != 1:
            raise ValueError("the per-op arrays differ in length")
        if len(self.op) and self.op.max() > DELETE:
            raise ValueError(f"unknown op code {self.op.max()}")

    def __len__(self) -> int:
        return len(self.op)

    def counts(self) -> dict:
        """Ops per type, by name."""
        return dict(zip(OP_NAMES, np.bincount(self.op, minlength=len(OP_NAMES)).tolist()))

    def save(self, path) -> None:
        """Write one ``.npz``, byte-identical for identical streams (fixed zip timestamps, no compression)."""
        path = Path(path)
        meta = np.frombuffer(json.dumps(self.meta, sort_keys=True).encode(), dtype=np.uint8)
        with atomic_file(path) as out, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, arr in [*((n, getattr(self, n)) for n in _ARRAYS), ("meta", meta)]:
                info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.create_system, info.external_attr = 3, 0o644 << 16
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)

    @classmethod
    def load(cls, path) -> "OpStream":
        """Read a stream written by ``save``."""
        with np.load(path, allow_pickle=False) as z:
            missing = [n for n in [*_ARRAYS, "meta"] if n not in z.files]
            if missing:
                raise ValueError(f"{path}: not an op stream, missing {', '.join(missing)}")
            arrays = {n: z[n] for n in _ARRAYS}
            meta = json.loads(z["meta"].tobytes().decode())
        return cls(**arrays, meta=meta)


@njit(cache=True, error_model="numpy")
def _choose_ops(n, shares, st):
    """YCSB's DiscreteGenerator: op i with probability shares[i] (shares sum to 1)."""
    fallback = 0
    for k in range(len(shares)):
        if shares[k] > 0:
            fallback = k
    out = np.empty(n, dtype=np.uint8)
    for i in range(n):
        st, u = gen._next_double(st)
        k = 0
        while k < len(shares) and not (shares[k] > 0 and u < shares[k]):
            u -= shares[k]
            k += 1
        out[i] = k if k < len(shares) else fallback
    return out


@njit(cache=True, error_model="numpy")
def _run(op, n_load, values, kind, p, m, scan_kind, scan_p, scan_m, st):
    """Pick each op's record and value and track every record's value so ``expected`` is exact.

    Records 0..n_load-1 are loaded; inserts take n_load, n_load+1, ... in turn
    and are visible to the next op. ``values`` (one per record, -1 absent) is
    updated in place.
    """
    n = len(op)
    rec = np.empty(n, dtype=np.int64)
    value = np.zeros(n, dtype=np.int64)
    scan_len = np.zeros(n, dtype=np.int64)
    expected = np.full(n, -1, dtype=np.int64)
    last = n_load - 1
    for i in range(n):
        o = op[i]
        if o == INSERT:
            last += 1
            r = last
        else:
            st, m, r = gen.next_keynum(st, kind, p, m, last)
        if o == READ or o == RMW:
            expected[i] = values[r]
        if o == INSERT or o == UPDATE or o == RMW:
            st, v = gen._value(st)
            value[i] = v
            values[r] = v
        elif o == SCAN:
            st, scan_m, scan_len[i] = gen.draw(st, scan_kind, scan_p, scan_m, 0)
        elif o == DELETE:
            values[r] = -1
        rec[i] = r
    return rec, value, scan_len, expected


def _assemble(keys, rank, n_load, op, chooser, scan, seed, meta) -> OpStream:
    """Run the ops over records 0, 1, ... where record r is ``keys[rank[r]]`` (``keys`` sorted).

    Records below ``n_load`` are bulk-loaded; the rest are inserted in record order.
    """
    values = np.full(len(rank), -1, dtype=np.int64)
    values[:n_load] = gen.random_values(n_load, gen.rng_state(seed, _S_VALUES))
    load_values = values[:n_load].copy()
    rec, value, scan_len, expected = _run(op, n_load, values, *chooser, *scan, gen.rng_state(seed, _S_KEYS))
    loaded = np.zeros(len(keys), dtype=bool)
    loaded[rank[:n_load]] = True
    by_position = np.empty(len(keys), dtype=np.int64)
    by_position[rank[:n_load]] = load_values
    return OpStream(load_keys=keys[loaded], load_values=by_position[loaded], op=op,
                    key=keys[rank[rec]], value=value, scan_len=scan_len, expected=expected,
                    meta={"format": FORMAT, "seed": int(seed), **meta,
                          "dataset": None if meta["dataset"] is None else str(meta["dataset"])})


def _unique_keys(keys) -> tuple[np.ndarray, int]:
    keys = np.asarray(keys)
    if keys.dtype not in KEY_DTYPES:
        raise ValueError(f"keys must be uint64, int64 or float64, not {keys.dtype}")
    return dedup(keys)


def _request_chooser(cfg, n_load, n_ops):
    """The key chooser CoreWorkload builds for ``requestdistribution``."""
    dist, theta = cfg["requestdistribution"], cfg["zipfianconstant"]
    last = n_load - 1
    if dist == "zipfian":
        expected_new = int(n_ops * cfg["insertproportion"] * 2.0)  # YCSB's fudge factor 2
        return gen.make_scrambled(0, last + expected_new + 1, theta)
    if dist == "latest":
        return gen.make_latest(last, theta)
    if dist == "hotspot":
        return gen.make_hotspot(0, last, cfg["hotspotdatafraction"], cfg["hotspotopnfraction"])
    if dist == "exponential":
        return gen.make_exponential(cfg["exponential.percentile"], n_load * cfg["exponential.frac"])
    return (gen.make_sequential if dist == "sequential" else gen.make_uniform)(0, last)


def ycsb_stream(props: dict, keys, seed: int, operationcount=None, name="ycsb", dataset=None) -> OpStream:
    """A YCSB core-workload stream over ``keys`` (the dataset), following ``props``.

    Ops are drawn first, so the inserts are counted before the split:
    ``recordcount`` keys are loaded (0 or absent: as many as fit) and exactly
    one held-out key per insert is kept; if the dataset is too small for
    ``recordcount``, fewer records are loaded and ``meta["notes"]`` says so.
    ``insertorder=ordered`` maps records to keys in key order (inserts append
    past the largest key); ``hashed`` (the default) in a seeded random order.
    """
    cfg = core_settings(props)
    n_ops = operationcount if operationcount is not None else cfg["operationcount"]
    if n_ops is None:
        raise ValueError("operationcount is not set: give it in the file, with -p or as an argument")
    shares = np.array([cfg[k] for k in PROPORTION_KEYS])
    if shares.sum() <= 0:
        raise ValueError("all operation proportions are 0")
    if cfg["minscanlength"] > cfg["maxscanlength"]:
        raise ValueError(f"minscanlength {cfg['minscanlength']} exceeds maxscanlength {cfg['maxscanlength']}")
    keys, n_dup = _unique_keys(keys)
    op = _choose_ops(n_ops, shares / shares.sum(), gen.rng_state(seed, _S_OPS))
    n_ins = int(np.count_nonzero(op == INSERT))
    n_keys = len(keys)
    room = n_keys - n_ins
    if room < 1:
        raise ValueError(f"{name}: the stream inserts {n_ins:,} keys but the dataset has only {len(keys):,}; "
                         "lower operationcount or use more keys")
    requested = cfg["recordcount"] or None
    n_load = min(requested or room, room)
    notes = []
    if requested and requested > room:
        notes.append(f"recordcount {requested:,} does not fit: the dataset has {len(keys):,} keys and "
                     f"{n_ins:,} are held out for inserts, so {n_load:,} records are loaded")
    take = n_load + n_ins
    if take < len(keys):
        keys = keys[gen.sample_sorted(len(keys), take, gen.rng_state(seed, _S_SUBSET))]
    hashed = cfg["insertorder"] == "hashed"
    rank = gen.permutation(take, gen.rng_state(seed, _S_ORDER)) if hashed else np.arange(take)
    scan = (gen.make_zipfian if cfg["scanlengthdistribution"] == "zipfian" else gen.make_uniform)(
        cfg["minscanlength"], cfg["maxscanlength"])
    meta = {"kind": "ycsb", "workload": name, "dataset": dataset,
            "properties": {k: str(v) for k, v in {**props, "operationcount": n_ops}.items()},
            "recordcount": n_load, "recordcount_requested": requested, "operationcount": n_ops,
            "inserts": n_ins, "dataset_keys": n_keys, "duplicates_removed": n_dup, "notes": notes}
    return _assemble(keys, rank, n_load, op, _request_chooser(cfg, n_load, n_ops), scan, seed, meta)


def paper_stream(keys, read_fraction: float, n_ops=None, seed: int = 0, dataset=None) -> OpStream:
    """The NFL paper's workload: bulk-load a random half, then lookups and inserts.

    Lookups are scrambled zipfian over the loaded keys (in key order), inserts
    take the other half in random order; exactly ``round(n_ops *
    read_fraction)`` ops are lookups, at random positions. ``n_ops`` defaults to
    the number of held-out keys, the most any read fraction allows.
    """
    if not 0.0 <= read_fraction <= 1.0:
        raise ValueError(f"read fraction must be in [0, 1], not {read_fraction}")
    name = f"paper-R{round(read_fraction * 100)}"
    keys, n_dup = _unique_keys(keys)
    if len(keys) < 2:
        raise ValueError(f"{name}: needs at least 2 keys, got {len(keys)}")
    n_held = len(keys) // 2
    n_load = len(keys) - n_held
    n_ops = n_held if n_ops is None else n_ops
    n_reads = round(n_ops * read_fraction)
    n_ins = n_ops - n_reads
    if n_ins > n_held:
        raise ValueError(f"{name}: {n_ops:,} ops need {n_ins:,} inserts but only {n_held:,} of the "
                         f"{len(keys):,} keys are held out; this dataset allows at most "
                         f"{int(n_held / (1 - read_fraction)):,} ops at this read fraction")
    perm = gen.permutation(len(keys), gen.rng_state(seed, _S_ORDER))
    loaded = np.zeros(len(keys), dtype=bool)
    loaded[perm[:n_load]] = True
    rank = np.concatenate([np.flatnonzero(loaded), perm[n_load:n_load + n_ins]])
    op = np.repeat(np.array([READ, INSERT], dtype=np.uint8), [n_reads, n_ins])
    op = op[gen.permutation(n_ops, gen.rng_state(seed, _S_OPS))]
    meta = {"kind": "paper", "workload": name, "dataset": dataset, "read_fraction": read_fraction,
            "recordcount": n_load, "operationcount": n_ops, "inserts": n_ins,
            "dataset_keys": len(keys), "duplicates_removed": n_dup, "notes": []}
    return _assemble(keys, rank, n_load, op, gen.make_scrambled(0, n_load - 1), gen.make_uniform(1, 1), seed, meta)


def workload_path(workload) -> Path:
    """A YCSB file by path, or by bare name from ``workloads/ycsb`` (``"workloada"``)."""
    path = Path(workload)
    if path.is_file():
        return path
    if path.name == str(workload) and (YCSB_DIR / path.name).is_file():
        return YCSB_DIR / path.name
    bundled = sorted(p.name for p in YCSB_DIR.iterdir() if p.is_file())
    raise ValueError(f"unknown workload {str(workload)!r}: not a file, nor one of "
                     f"{', '.join(bundled + PAPER_WORKLOADS)}")


def check_workload(workload: str) -> None:
    """Raises ValueError, naming the choices, unless workload is paper-R<0..100> or a YCSB file or bundled name."""
    m = _PAPER.fullmatch(str(workload))
    if m and int(m[1]) > 100:
        raise ValueError(f"{workload}: the read percentage must be 0..100")
    if not m:
        workload_path(workload)


def build(workload: str, keys, seed: int, overrides=None, n_ops=None, dataset=None) -> OpStream:
    """One entry for both kinds: a YCSB file (path or bundled name) or ``paper-R<read %>``."""
    check_workload(workload)
    m = _PAPER.fullmatch(str(workload))
    if m:
        if overrides:
            raise ValueError(f"{workload}: -p overrides apply to YCSB workload files only")
        return paper_stream(keys, int(m[1]) / 100, n_ops, seed, dataset)
    props = parse_properties(workload_path(workload), overrides)
    return ycsb_stream(props, keys, seed, n_ops, name=Path(workload).name, dataset=dataset)
