"""Builds the C core with a harness under a sanitizer, for the hardening tests.

The list of core sources is read from native/build_native.py (the cffi
build), so the fuzzer, the leak checks and the ThreadSanitizer harness always
compile exactly what the Python package compiles.  Used by tests/test_fuzz.py,
tests/test_leaks.py and tests/test_threads.py; runnable to build one binary:

    python native/fuzz/build.py fuzz_core.c --cc clang \
        --flags=-fsanitize=fuzzer,address,undefined -o /tmp/fuzz_core
"""
import argparse
import ast
import pathlib
import shutil
import subprocess

NATIVE = pathlib.Path(__file__).resolve().parent.parent
FUZZ = NATIVE / "fuzz"


def core_sources():
    """The C files of the core, as listed by SOURCES in native/build_native.py."""
    tree = ast.parse((NATIVE / "build_native.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SOURCES" for t in node.targets):
            return [NATIVE / name for name in ast.literal_eval(node.value)]
    raise RuntimeError("native/build_native.py has no SOURCES list")


def compiler(*names):
    """The path of the first of names found on PATH, or None."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


# What a harness needs at link time: these fail allocations on purpose.
LINK_FLAGS = {"fuzz_core.c": ["-Wl,--wrap=malloc", "-Wl,--wrap=calloc"],
              "enomem_insert.c": ["-Wl,--wrap=malloc"]}


def build(harness, out, flags, cc="clang", opt="-O1"):
    """Compiles harness (a path) with the core into out; RuntimeError with the
    compiler's messages on failure."""
    harness = pathlib.Path(harness)
    cmd = [cc, "-std=c99", "-g", opt, "-fno-omit-frame-pointer", "-D_GNU_SOURCE", "-pthread",
           *flags, f"-I{NATIVE}", *map(str, core_sources()), str(harness), "-lm",
           *LINK_FLAGS.get(harness.name, []), "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n{done.stderr}")
    return pathlib.Path(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("harness", help="a C file in native/fuzz/ or a path")
    ap.add_argument("--cc", default="clang")
    ap.add_argument("--flags", default="-fsanitize=fuzzer,address,undefined")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    harness = pathlib.Path(args.harness)
    if not harness.exists():
        harness = FUZZ / harness
    print(build(harness, args.out, args.flags.split(), cc=args.cc))


if __name__ == "__main__":
    main()
