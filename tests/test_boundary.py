"""All use of the cffi module sits in nfl/_boundary.py; its wrappers check buffers and map return codes.

The structural check walks the syntax tree of every module of nfl/ (as
test_imports.py does for import circles): outside the boundary module no
import of nfl._native (top level or lazy, absolute or relative), no attribute
named _native, and no name or attribute `ffi` or `lib`.
"""
import ast
import pathlib

import numpy as np
import pytest

import nfl
from nfl import _boundary
from test_imports import imports_of, modules

BOUNDARY = "nfl._boundary"
NATIVE = "nfl._native"
CFFI_NAMES = {"ffi", "lib"}


def violations(name: str, path: pathlib.Path) -> list:
    """What module `name` (source at path) does with the cffi module: (line, what) pairs."""
    found = [(0, f"imports {NATIVE}")] if NATIVE in imports_of(name, path, set(modules()) | {NATIVE}) else []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Name) and node.id in CFFI_NAMES:
            found.append((node.lineno, f"uses the name {node.id}"))
        elif isinstance(node, ast.Attribute) and node.attr in CFFI_NAMES | {"_native"}:
            found.append((node.lineno, f"reads the attribute .{node.attr}"))
        elif isinstance(node, ast.alias) and (node.asname or node.name).split(".")[-1] in CFFI_NAMES:
            found.append((node.lineno, f"imports a name {node.asname or node.name}"))
        elif isinstance(node, ast.Constant) and node.value in (NATIVE, "_native"):
            found.append((node.lineno, f"names the module {node.value!r}"))
    return found


def test_only_the_boundary_module_uses_cffi():
    mods = modules()
    assert len(mods) > 20 and BOUNDARY in mods, "the walk found too few modules: is it broken?"
    bad = {name: v for name, path in sorted(mods.items()) if name != BOUNDARY and (v := violations(name, path))}
    assert bad == {}
    assert violations(BOUNDARY, mods[BOUNDARY]), "the check sees no cffi use in the boundary module itself"


@pytest.mark.parametrize("source", [
    "from nfl._native import ffi, lib\n",
    "from nfl import _native\n",
    "from .. import _native\n",  # relative, from nfl/flow/
    "import nfl._native as n\n",
    "def f():\n    import nfl._native\n",  # lazy
    "from nfl._boundary import lib\n",  # lib taken from the boundary module
    "import nfl\nx = nfl._native.lib.NFL_MAX_BUCKET\n",
    "from nfl import index\nx = index.lib.NFL_UPSERT\n",
    "import importlib\nm = importlib.import_module('nfl._native')\n",
])
def test_the_check_finds_a_deliberate_violation(tmp_path, source):
    path = tmp_path / "m.py"
    path.write_text(source)
    assert violations("nfl.flow.m", path)


def test_the_check_passes_clean_code(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import zlib, hashlib\nfrom nfl import _boundary\nx = _boundary.MAX_BUCKET + zlib.crc32(b'')\n")
    assert violations("nfl.flow.m", path) == []


# ---- the wrappers ------------------------------------------------------------


@pytest.fixture
def tree():
    idx = nfl.Index.bulk_load(np.array([10, 20, 30], dtype=np.uint64), flow="off")
    return idx, idx._ptr


def test_a_buffer_of_the_wrong_length_or_size_is_refused_before_c_sees_it(tree):
    idx, ptr = tree
    keys = np.array([10, 20], dtype=np.uint64)
    with pytest.raises(ValueError, match="found: need 2 elements"):
        _boundary.get_many(ptr, keys, None, np.empty(1, dtype=bool), 1)
    with pytest.raises(ValueError, match="values: need 2 elements of 8 bytes"):
        _boundary.get_many(ptr, keys, np.empty(2, dtype=np.int32), np.empty(2, dtype=bool), 1)
    with pytest.raises(ValueError, match="values: need 2 elements"):
        _boundary.put_many(ptr, keys, np.zeros(3, dtype=np.uint64), _boundary.UPSERT, np.empty(2, dtype=bool), 1)
    with pytest.raises(ValueError, match="not C-contiguous"):
        _boundary.read_range(ptr, 0, 0, _boundary.FROM_START | _boundary.TO_END,
                             np.empty(4, dtype=np.uint64)[::2], np.empty(2, dtype=np.uint64))
    assert dict(idx.items()) == {10: 0, 20: 1, 30: 2}


def test_return_codes_become_the_named_exceptions(tree):
    idx, ptr = tree
    with pytest.raises(ValueError, match="duplicate key in keys: 7"):
        _boundary.bulk_load(ptr, np.array([7, 7], dtype=np.uint64), np.zeros(2, dtype=np.uint64), 4)
    with pytest.raises(ValueError, match="invalid argument"):  # NFL_EINVAL: bucket size out of range
        _boundary.bulk_load(ptr, np.array([7], dtype=np.uint64), np.zeros(1, dtype=np.uint64),
                            _boundary.MAX_BUCKET + 1)
    assert dict(idx.items()) == {10: 0, 20: 1, 30: 2}  # a failed load changes nothing
    with pytest.raises(ValueError, match="refused"):
        _boundary.create(_boundary.KEY_TYPES["uint64"], np.zeros(3))
    with pytest.raises(ValueError, match="refused"):
        _boundary.flow_create(np.zeros(3))


def test_the_wrappers_read_what_the_tree_holds(tree):
    idx, ptr = tree
    keys, values = np.empty(8, dtype=np.uint64), np.empty(8, dtype=np.int64)
    n = _boundary.read_range(ptr, 15, 0, _boundary.TO_END, keys, values)
    assert (keys[:n].tolist(), values[:n].tolist()) == ([20, 30], [1, 2])
    found = np.empty(3, dtype=bool)
    _boundary.get_many(ptr, np.array([10, 11, 30], dtype=np.uint64), None, found, 1)
    assert found.tolist() == [True, False, True]
    st = _boundary.stats(ptr)
    assert (st.size, sum(st.depth_keys), st.flow_enabled) == (3, 3, False)
    assert _boundary.check(ptr) is None and _boundary.memory_usage(ptr) > 0
    counts, pieces = _boundary.slot_counts(np.array([10, 20, 30], dtype=np.uint64), None, 0.0)
    assert counts.sum() == 3 and counts.dtype == np.uint32 and not pieces
