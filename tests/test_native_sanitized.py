"""The C core alone, built and run under AddressSanitizer and UBSan.

native/tests/test_core.c drives random op sequences against a sorted-array
reference; any memory error, leak or undefined behaviour fails the run.
"""
import importlib.util
import pathlib
import shutil
import subprocess

import pytest

NATIVE = pathlib.Path(__file__).resolve().parent.parent / "native"
_spec = importlib.util.spec_from_file_location("nfl_fuzz_build", NATIVE / "fuzz" / "build.py")
native_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native_build)
SOURCES = native_build.core_sources()  # exactly what the Python package compiles
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


def build(tmp_path, main, extra_flags=()):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler: the sanitizer tests need gcc")
    exe = tmp_path / pathlib.Path(main).stem
    cmd = [cc, "-std=c99", "-g", "-O1", "-D_GNU_SOURCE", "-pthread", *SANITIZE, *extra_flags,
           f"-I{NATIVE}", *map(str, SOURCES), str(NATIVE / main), "-lm", "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def run(exe, *args, timeout=300):
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1"}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_core_random_ops_under_sanitizers(tmp_path):
    exe = build(tmp_path, "tests/test_core.c")
    result = run(exe, "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def test_batches_over_threads_under_sanitizers(tmp_path):
    """native/tests/test_parallel.c: the threaded batch calls give the one-thread results, no memory error."""
    exe = build(tmp_path, "tests/test_parallel.c")
    result = run(exe, "1", "70000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def test_check_catches_broken_slots_under_sanitizers(tmp_path):
    """native/tests/test_check.c: each corrupted kind of tagged slot fails afli_check; restored, it passes."""
    exe = build(tmp_path, "tests/test_check.c")
    result = run(exe)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout
