"""Build of the native modules and the package layout; the metadata is in pyproject.toml.

The cffi module is built for CPython's limited API, so the wheel is tagged
abi3 (cp310-abi3): one wheel per platform serves Python 3.10 and later.  A
C-API extension added here must pass py_limited_api=True as well.

The checkout keeps bench/ and workloads/ (``python -m bench quick`` from its
root); installed they become nfl_bench and nfl_workloads, so nothing with a
generic name lands at the top of site-packages.
"""
from setuptools import find_packages, setup

setup(
    # workloads/data and workloads/ycsb hold data files only (package data of their own)
    packages=find_packages(include=["nfl", "nfl.*"]) + ["nfl_bench", "nfl_workloads", "nfl_workloads.data",
                                                        "nfl_workloads.ycsb"],
    package_dir={"nfl_bench": "bench", "nfl_workloads": "workloads"},
    cffi_modules=["native/build_native.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
