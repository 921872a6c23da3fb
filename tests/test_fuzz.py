"""The coverage-guided fuzzer of the C core, run for a bounded time, and its findings.

native/fuzz/fuzz_core.c (libFuzzer, ASan, UBSan) decodes inputs into op
sequences checked against a sorted-array model.  It runs for NFL_FUZZ_SECONDS
(default 60) from the seeds in native/fuzz/corpus; new inputs go to a
temporary directory, so the checkout is never written.  Any crash, sanitizer
report, leak or model mismatch fails the test.  Its past findings are kept
below as regression tests.
"""
import importlib.util
import os
import pathlib
import re
import subprocess

import numpy as np
import pytest

import nfl

_BUILD = pathlib.Path(__file__).resolve().parent.parent / "native" / "fuzz" / "build.py"
_spec = importlib.util.spec_from_file_location("nfl_fuzz_build", _BUILD)
native_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native_build)

FUZZ_SECONDS = int(os.environ.get("NFL_FUZZ_SECONDS", "60"))
FUZZ_FLAGS = ["-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"]


def test_fuzz_core_finds_nothing(tmp_path):
    if native_build.compiler("clang") is None:
        reason = ("clang is not installed, so libFuzzer cannot be built; "
                  "install it with: apt-get install -y clang libclang-rt-14-dev (.ci/run does)")
        print(reason)
        pytest.skip(reason)
    exe = native_build.build(native_build.FUZZ / "fuzz_core.c", tmp_path / "fuzz_core", FUZZ_FLAGS)
    found = tmp_path / "found"
    found.mkdir()
    cmd = [str(exe), f"-max_total_time={FUZZ_SECONDS}", "-print_final_stats=1", "-rss_limit_mb=2048",
           f"-artifact_prefix={tmp_path}/", str(found), str(native_build.FUZZ / "corpus")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=FUZZ_SECONDS + 900)
    log = done.stderr
    stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", log))
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    print(f"\nfuzz_core: {stats.get('number_of_executed_units')} executions in {FUZZ_SECONDS} s "
          f"({stats.get('average_exec_per_sec')}/s), coverage {cov[-1] if cov else '?'} (edges, features), "
          f"{len(list(found.iterdir()))} new inputs, slowest {stats.get('slowest_unit_time_sec')} s")
    artifacts = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "leak-", "oom-", "timeout-"))]
    assert done.returncode == 0 and not artifacts, f"{artifacts}\n{log[-6000:]}"


def test_keys_spanning_a_tiny_range_keep_the_tree_shallow():
    """Subnormal keys: the model's scale overflowed and the tree became a chain."""
    keys = np.arange(1, 4001, dtype=np.uint64).view(np.float64)  # 4.9e-324 * i: subnormals
    idx = nfl.Index.bulk_load(keys, flow="off")
    stats = idx.stats()
    assert stats["max_depth"] <= 8 and stats["memory_bytes"] < 100 * keys.size, stats
    for i in range(1, 2001):  # inserts take the same path
        idx[float(np.float64(5e-324) * (4000 + i))] = i
    assert idx.stats()["max_depth"] <= 8


def test_failed_insert_keeps_the_other_keys(tmp_path):
    """native/fuzz/enomem_insert.c: an insert whose rebuild cannot allocate keeps every other key."""
    cc = native_build.compiler("gcc", "clang")
    exe = native_build.build(native_build.FUZZ / "enomem_insert.c", tmp_path / "enomem", [], cc=cc)
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
