"""Key sets by name: seeded synthetic distributions, the real sets in ../shared/data, the bundled default.

Every set comes back as sorted unique keys. Synthetic keys are uint64, drawn
with numpy's PCG64 from the seed; when duplicates leave fewer than n, more
are drawn and a seeded uniform choice trims back to n (the paper's "draw
more, deduplicate, trim"). Real sets are
SOSD files found in ``data_dir()`` (the public SOSD sets land there with
``python -m workloads fetch``);
``default`` is a 200K-key sample of ``ts_git_commits_1M`` shipped in
``workloads/data`` so that quick runs need nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import generators as gen
from . import hard
from .sosd import read_unique, suffix_dtype

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_FILE = PACKAGE_DIR / "data" / "ts_git_commits_200K_uint64"
#: The real sets documented in ../shared/data/README.md.
REAL_SETS = ["osm_tzb_s2cells_4M", "ts_git_commits_1M", "ipv4_geolite2_3M", "lon_gshhg_4M"]
#: The public SOSD sets ``python -m workloads fetch`` downloads: file stem -> its short name there.
FETCHABLE = {"books_200M": "books", "fb_200M": "fb", "osm_cellids_200M": "osm", "wiki_ts_200M": "wiki"}
#: Keys drawn for a synthetic set when no n is given.
DEFAULT_SYNTHETIC_N = 1_000_000


def _uniform(rng, m):
    return rng.integers(0, 2**64, size=m, dtype=np.uint64)


def _normal(rng, m):
    # centred in the uint64 range, sigma 1e16 keeps 900 sigmas of room on each side
    offsets = np.rint(rng.normal(0.0, 1e16, size=m)).astype(np.int64)
    return offsets.view(np.uint64) + np.uint64(2**63)


def _lognormal(rng, m):
    return (rng.lognormal(0.0, 2.0, size=m) * 1e9).astype(np.uint64)


def _exponential(rng, m):
    return (rng.exponential(1.0, size=m) * 1e12).astype(np.uint64)


def _zipf_gaps(rng, m):
    # gaps >= 1 from Zipf's law with exponent 2: infinite variance, occasional huge jumps
    return np.cumsum(rng.zipf(2.0, size=m).astype(np.uint64))


def _clustered(rng, m):
    # ~sqrt(m) clusters; sizes lognormal, densities log-uniform over six decades
    n_clusters = max(1, int(np.sqrt(m)))
    sizes = rng.lognormal(0.0, 1.0, size=n_clusters)
    sizes = np.maximum(1, np.round(sizes / sizes.sum() * m)).astype(np.int64)
    spacing = 10.0 ** rng.uniform(0.0, 6.0, size=n_clusters)
    starts = rng.integers(0, 2**62, size=n_clusters, dtype=np.uint64)
    cluster = np.repeat(np.arange(n_clusters), sizes)
    spans = sizes * spacing
    return starts[cluster] + (rng.random(len(cluster)) * spans[cluster]).astype(np.uint64)


#: Synthetic distributions: name -> draw(rng, m) of m raw (possibly repeated) uint64 keys.
DISTRIBUTIONS = {
    "uniform": _uniform,
    "normal": _normal,
    "lognormal": _lognormal,
    "exponential": _exponential,
    "zipf-gaps": _zipf_gaps,
    "clustered": _clustered,
    "dense-runs": hard.dense_runs,
}


def generate(dist: str, n: int, seed: int) -> np.ndarray:
    """``n`` sorted unique uint64 keys from a synthetic distribution (see ``DISTRIBUTIONS``)."""
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution {dist!r}: use one of {', '.join(DISTRIBUTIONS)}")
    if n < 0:
        raise ValueError(f"n must be non-negative, not {n}")
    draws = n
    for attempt in range(8):
        keys = np.unique(DISTRIBUTIONS[dist](np.random.default_rng([seed, attempt]), draws))
        if len(keys) >= n:
            return keys[gen.sample_sorted(len(keys), n, gen.rng_state(seed, 0))] if len(keys) > n else keys
        draws += 2 * (n - len(keys)) + 16
    raise ValueError(f"{dist}: could not draw {n:,} distinct keys (got {len(keys):,} from {draws:,} draws)")


def data_dir() -> Path:
    """Where the real key sets live (and ``python -m workloads fetch`` writes): ``$NFL_DATA_DIR``,
    else ``<repo>/../shared/data`` in a checkout, else ``~/.cache/nfl/data`` where nfl is installed."""
    if os.environ.get("NFL_DATA_DIR"):
        return Path(os.environ["NFL_DATA_DIR"])
    if PACKAGE_DIR.name == "workloads":
        return PACKAGE_DIR.parent.parent / "shared" / "data"
    return Path.home() / ".cache" / "nfl" / "data"


def real_sets() -> dict:
    """Short name -> path of every SOSD file in ``data_dir()`` (empty if it is missing)."""
    folder = data_dir()
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.iterdir()):
        dtype = suffix_dtype(path)
        if dtype and path.is_file():
            found[path.name[: -len(dtype) - 1]] = path
    return found


def known_names() -> list:
    """Every name ``load`` accepts (besides file paths)."""
    return ["default", *DISTRIBUTIONS, *sorted(set(REAL_SETS) | set(real_sets()))]


def source(name: str):
    """The SOSD file a named key set is read from, or None for a synthetic distribution.

    Reads nothing: callers check names before any work.  Raises
    ``FileNotFoundError`` for a real set absent from ``data_dir()`` (naming
    ``python -m workloads fetch`` and NFL_DATA_DIR) and ``ValueError`` for an
    unknown name (listing the known ones).
    """
    if name in DISTRIBUTIONS:
        return None
    if name == "default":
        return DEFAULT_FILE
    if Path(name).is_file():
        return Path(name)
    short = name[: -len(suffix_dtype(name)) - 1] if suffix_dtype(name) else name
    found = real_sets()
    if short in found:
        return found[short]
    if short in REAL_SETS:
        raise FileNotFoundError(f"key set {short!r} lives in {data_dir()}, which does not have it; "
                                "set NFL_DATA_DIR to the folder holding the SOSD files")
    if short in FETCHABLE:
        raise FileNotFoundError(f"key set {short!r} is not in {data_dir()}: download it with "
                                f"python -m {__package__} fetch {FETCHABLE[short]} (1.6 GB), or set NFL_DATA_DIR")
    raise ValueError(f"unknown key set {name!r}: use one of {', '.join(known_names())} or a file path")


def load_counted(name: str, n=None, seed: int = 0) -> tuple[np.ndarray, int]:
    """``load`` plus the number of duplicate keys removed from the source file."""
    path = source(name)
    if path is None:
        return generate(name, DEFAULT_SYNTHETIC_N if n is None else n, seed), 0
    keys, n_dup = read_unique(path)
    if n is not None:
        if n > len(keys):
            raise ValueError(f"{name}: asked for {n:,} keys but it has only {len(keys):,}")
        keys = keys[gen.sample_sorted(len(keys), n, gen.rng_state(seed, 0))]
    return keys, n_dup


def load(name: str, n=None, seed: int = 0) -> np.ndarray:
    """Sorted unique keys of a named set (synthetic, real, ``default``) or an SOSD file path.

    ``n`` takes a seeded uniform sample of that many keys (synthetic sets: draws
    n keys, default 1M). Unknown names raise ``ValueError`` listing the known ones.
    """
    return load_counted(name, n, seed)[0]
