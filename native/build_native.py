"""cffi build script (API mode, out of line) for the C core in native/.

The C declarations come from the headers in HEADERS, between their CDEF
markers, so the headers stay the single description of the native API: nfl.h
the index, executor.h the benchmark's op-stream executor.
"""
import os
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
HEADERS = ["nfl.h", "executor.h"]
SOURCES = ["encode.c", "flow.c", "afli.c", "batch.c", "parallel.c", "ordered.c", "stats.c", "check.c", "index.c", "fork.c", "executor.c", "scratch.c"]


def _cdef() -> str:
    parts = []
    for name in HEADERS:
        text = (HERE / name).read_text()
        parts.append(text[text.index("/* CDEF-BEGIN */"):text.index("/* CDEF-END */")])
    return "\n".join(parts)


def _compile_args() -> list:
    """-O3 by default; NFL_MARCH_NATIVE=1 at install adds -march=native."""
    args = ["-std=c99", "-O3", "-ffp-contract=off", "-fno-strict-aliasing", "-D_GNU_SOURCE", "-pthread"]
    if os.environ.get("NFL_MARCH_NATIVE") == "1":
        args.append("-march=native")
    return args


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "nfl._native",
    "".join(f'#include "{name}"\n' for name in HEADERS),
    sources=[str((HERE / s).relative_to(HERE.parent)) for s in SOURCES],
    include_dirs=[str(HERE.relative_to(HERE.parent))],
    extra_compile_args=_compile_args(),
    extra_link_args=["-pthread", "-lm"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
