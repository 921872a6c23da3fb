"""Build of the native modules and the package layout; the metadata is in pyproject.toml.

Both native modules are built for CPython's limited API, so the wheel is
tagged abi3 (cp310-abi3): one wheel per platform serves Python 3.10 and
later.  The cffi module (nfl._native) is abi3 by construction; the
single-key path (nfl._index, native/pyindex.c) passes py_limited_api=True.

The checkout keeps bench/ and workloads/ (``python -m bench quick`` from its
root); installed they become nfl_bench and nfl_workloads, so nothing with a
generic name lands at the top of site-packages.
"""
from setuptools import Extension, find_packages, setup

# The single-key path (native/pyindex.c): stable ABI, one binary for CPython >= 3.10.
_INDEX_EXT = Extension(
    "nfl._index", ["native/pyindex.c"], include_dirs=["native"], py_limited_api=True,
    define_macros=[("Py_LIMITED_API", "0x030A0000")], extra_compile_args=["-std=c99", "-O3"],
)

setup(
    # workloads/data and workloads/ycsb hold data files only (package data of their own)
    packages=find_packages(include=["nfl", "nfl.*"]) + ["nfl_bench", "nfl_workloads", "nfl_workloads.data",
                                                        "nfl_workloads.ycsb"],
    package_dir={"nfl_bench": "bench", "nfl_workloads": "workloads"},
    cffi_modules=["native/build_native.py:ffibuilder"],
    ext_modules=[_INDEX_EXT],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
