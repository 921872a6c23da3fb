"""Leak checks: the C core under LeakSanitizer and valgrind, and a Python process's RSS.

LeakSanitizer silently does nothing where ptrace is restricted, so its test
first plants a leak and requires LSan to report it.  valgrind checks the same
random-op test (native/tests/test_core.c) and the fuzzer's seed corpus
replayed without libFuzzer.  The RSS test builds and drops indexes in a
subprocess (NFL_LEAK_KEYS keys, NFL_LEAK_CYCLES cycles; small by default so
CI stays quick) and requires the resident size to stay flat after warm-up.
"""
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

_BUILD = pathlib.Path(__file__).resolve().parent.parent / "native" / "fuzz" / "build.py"
_spec = importlib.util.spec_from_file_location("nfl_fuzz_build", _BUILD)
native_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native_build)

LEAK_KEYS = int(os.environ.get("NFL_LEAK_KEYS", "200000"))
LEAK_CYCLES = int(os.environ.get("NFL_LEAK_CYCLES", "30"))
WARMUP = 5
PLANTED = "#include <stdlib.h>\nvoid *p;\nint main(void) { p = malloc(4321); p = 0; return 0; }\n"
VALGRIND = ["valgrind", "-q", "--leak-check=full", "--show-leak-kinds=all",
            "--errors-for-leak-kinds=all", "--error-exitcode=1"]


def gcc():
    cc = native_build.compiler("gcc", "clang", "cc")
    if cc is None:
        pytest.fail("no C compiler: the leak checks need gcc or clang")
    return cc


def test_core_has_no_leaks_under_leak_sanitizer(tmp_path):
    planted = tmp_path / "planted.c"
    planted.write_text(PLANTED)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
    cmd = [gcc(), "-g", "-fsanitize=address", str(planted), "-o", str(tmp_path / "planted")]
    subprocess.run(cmd, check=True, capture_output=True)
    probe = subprocess.run([str(tmp_path / "planted")], capture_output=True, text=True, env=env)
    if "4321 byte(s) leaked" not in probe.stderr:
        pytest.skip(f"LeakSanitizer does not work here (ptrace?): {probe.stderr[-300:]!r}; "
                    "the valgrind tests cover leaks")
    exe = native_build.build(native_build.NATIVE / "tests" / "test_core.c", tmp_path / "core",
                             ["-fsanitize=address"], cc=gcc())
    done = subprocess.run([str(exe), "2"], capture_output=True, text=True, env=env, timeout=600)
    assert "LeakSanitizer" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0 and "passed" in done.stdout, done.stdout + done.stderr[-3000:]


def run_valgrind(cmd):
    if native_build.compiler("valgrind") is None:
        pytest.skip("valgrind is not installed (.ci/run installs it)")
    done = subprocess.run(VALGRIND + cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    return done


def test_valgrind_detects_a_planted_leak(tmp_path):
    planted = tmp_path / "planted.c"
    planted.write_text(PLANTED)
    subprocess.run([gcc(), "-g", str(planted), "-o", str(tmp_path / "planted")], check=True)
    if native_build.compiler("valgrind") is None:
        pytest.skip("valgrind is not installed (.ci/run installs it)")
    done = subprocess.run(VALGRIND + [str(tmp_path / "planted")], capture_output=True, text=True)
    assert done.returncode == 1 and "4,321 bytes" in done.stderr


def test_core_has_no_leaks_under_valgrind(tmp_path):
    exe = native_build.build(native_build.NATIVE / "tests" / "test_core.c", tmp_path / "core", [],
                             cc=gcc())
    assert "passed" in run_valgrind([str(exe), "1"]).stdout


def test_fuzz_corpus_has_no_leaks_under_valgrind(tmp_path):
    """The seed inputs reach flows, failed bulk loads, options and the executor."""
    exe = native_build.build(native_build.FUZZ / "fuzz_core.c", tmp_path / "replay",
                             ["-DFUZZ_REPLAY"], cc=gcc())
    seeds = sorted(str(p) for p in (native_build.FUZZ / "corpus").iterdir())
    assert seeds, "native/fuzz/corpus is empty"
    assert f"{len(seeds)} inputs replayed" in run_valgrind([str(exe), *seeds]).stdout


RSS_LOOP = """
import gc, os, pickle, sys
import numpy as np
import nfl

n, cycles = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
page = os.sysconf("SC_PAGE_SIZE")
for cycle in range(cycles):
    keys = rng.permutation(np.unique(rng.integers(0, 2**62, int(n * 1.01), dtype=np.uint64))[:n])
    idx = nfl.Index.bulk_load(keys, flow="off")
    extra = rng.integers(2**62, 2**63, n // 10, dtype=np.uint64)
    idx.put_many(extra, np.arange(extra.size))
    assert idx.delete_many(keys[: n // 10]).all()
    values, found = idx.get_many(keys)
    assert found.sum() == n - n // 10
    ks, vs = idx.range(0, 2**61)
    again = pickle.loads(pickle.dumps(idx))
    assert len(again) == len(idx)
    del idx, again, keys, extra, values, found, ks, vs
    gc.collect()
    with open("/proc/self/statm") as f:
        print(int(f.read().split()[1]) * page, flush=True)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc for RSS")
def test_rss_stays_flat_building_and_dropping_indexes():
    done = subprocess.run([sys.executable, "-c", RSS_LOOP, str(LEAK_KEYS), str(LEAK_CYCLES)],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    rss = [int(line) for line in done.stdout.split()]
    # the peak of the first cycles after warm-up against the peak of the last: a leak grows
    # every cycle, while freed huge pages the heap has not trimmed yet come and go
    base, late = max(rss[WARMUP - 1:2 * WARMUP]), max(rss[-WARMUP:])
    growth = (late - base) / base
    print(f"\nRSS over {LEAK_CYCLES} cycles of {LEAK_KEYS:,} keys: peak after warm-up {base >> 20} MiB, "
          f"last cycles max {late >> 20} MiB, growth {100 * growth:+.1f} %")
    assert growth < 0.05, [r >> 20 for r in rss]
