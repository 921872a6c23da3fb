"""cffi build script (API mode, out of line) for the C core in native/.

The C declarations come from native/nfl.h between its CDEF markers, so the
header stays the single description of the native API.
"""
import os
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
SOURCES = ["encode.c", "flow.c", "afli.c", "batch.c", "ordered.c", "stats.c", "index.c", "fork.c", "executor.c"]


def _cdef() -> str:
    text = (HERE / "nfl.h").read_text()
    start = text.index("/* CDEF-BEGIN */")
    end = text.index("/* CDEF-END */")
    return text[start:end]


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
    '#include "nfl.h"',
    sources=[str((HERE / s).relative_to(HERE.parent)) for s in SOURCES],
    include_dirs=[str(HERE.relative_to(HERE.parent))],
    extra_compile_args=_compile_args(),
    extra_link_args=["-pthread", "-lm"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
