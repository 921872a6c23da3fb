"""Package metadata; the C core in native/ is built through cffi at install."""
from setuptools import Extension, find_packages, setup

# The single-key path (native/pyindex.c): stable ABI, one binary for CPython >= 3.10.
_INDEX_EXT = Extension(
    "nfl._index", ["native/pyindex.c"], include_dirs=["native"], py_limited_api=True,
    define_macros=[("Py_LIMITED_API", "0x030A0000")], extra_compile_args=["-std=c99", "-O3"],
)

setup(
    name="nfl",
    version="0.1.0",
    description="Learned-index key-value engine: a normalizing flow in front of an AFLI tree",
    packages=find_packages(include=["nfl", "nfl.*"]),
    python_requires=">=3.10",
    setup_requires=["cffi>=1.15"],
    cffi_modules=["native/build_native.py:ffibuilder"],
    ext_modules=[_INDEX_EXT],
    install_requires=["numpy>=1.24", "cffi>=1.15", "numba>=0.58"],
    extras_require={
        "dev": [
            "pytest>=7",
            "hypothesis>=6",
            "pytest-benchmark>=4",
            "sortedcontainers>=2.4",
            "pygm>=1.0",
            "scipy>=1.10",
            "rich>=13",
            "matplotlib>=3.7",
            "tqdm>=4.60",
        ],
        "train": ["torch==2.13.0"],
        "cluster": ["ray[default]>=2.9"],
    },
    entry_points={"console_scripts": ["nfl=nfl.cli:main"]},
    zip_safe=False,
)
