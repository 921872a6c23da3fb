"""native/scratch.c, the bulk load's kept scratch block, under ASan and UBSan.

native/tests/test_scratch.c checks reuse, which block is kept, the size
bound, overflow and threads; a write into a block after giving it back must
be reported (the kept block is poisoned), and LSan must find no leak (the
kept block is freed at exit).
"""
import importlib.util
import pathlib
import subprocess

import pytest

NATIVE = pathlib.Path(__file__).resolve().parent.parent / "native"
_spec = importlib.util.spec_from_file_location("nfl_fuzz_build", NATIVE / "fuzz" / "build.py")
native_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native_build)
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
ENV = {"ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "print_stacktrace=1"}


@pytest.fixture(scope="module")
def exe(tmp_path_factory):
    cc = native_build.compiler("gcc", "clang", "cc")
    if cc is None:
        pytest.fail("no C compiler: the scratch test needs gcc or clang")
    out = tmp_path_factory.mktemp("scratch") / "test_scratch"
    return native_build.build(NATIVE / "tests" / "test_scratch.c", out, SANITIZE, cc=cc)


def test_scratch_reuse_bounds_and_threads(exe):
    done = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout


def test_a_kept_block_is_poisoned(exe):
    done = subprocess.run([str(exe), "poisoned"], capture_output=True, text=True, timeout=120, env=ENV)
    assert done.returncode != 0 and "use-after-poison" in done.stderr, done.stdout + done.stderr
