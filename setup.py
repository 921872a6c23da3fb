"""Build of the native modules; the metadata is in pyproject.toml.

The cffi module is built for CPython's limited API, so the wheel is tagged
abi3 (cp310-abi3): one wheel per platform serves Python 3.10 and later.  A
C-API extension added here must pass py_limited_api=True as well.
"""
from setuptools import setup

setup(
    cffi_modules=["native/build_native.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
