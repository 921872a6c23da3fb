"""The documentation runs: the README's Python examples, every docstring example (doctest),
and a docstring on every public function and method of the API."""
import doctest
import importlib
import inspect
import os
import re
from pathlib import Path

import pytest

import nfl

ROOT = Path(__file__).resolve().parent.parent
#: Modules whose docstrings carry examples (>>>); each is run with doctest.
DOCTEST_MODULES = ["nfl", "nfl.index", "nfl.flow.flow", "nfl.flow.progress"]


def readme_blocks():
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_examples_run(tmp_path, monkeypatch):
    """The README's python blocks, in order, in one namespace, in a scratch directory (all but
    the Ray cluster's sketch, whose names stand for any keys: tests/test_cluster.py runs Ray)."""
    pytest.importorskip("torch")
    blocks = [b for b in readme_blocks() if "nfl.cluster" not in b]
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:
        exec(compile(block.replace("...", "pass"), "README.md", "exec"), namespace)
    assert len(namespace["idx"]) == len(namespace["keys"])


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0


def test_some_docstring_has_examples():
    finder = doctest.DocTestFinder()
    found = sum(len(t.examples) for name in DOCTEST_MODULES for t in finder.find(importlib.import_module(name)))
    assert found >= 10


def _public_callables():
    for owner in (nfl.Index, nfl.Flow):
        for name, member in vars(owner).items():
            if name.startswith("_") and name != "__init__":
                continue
            func = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if callable(func) or isinstance(member, property):
                yield f"{owner.__name__}.{name}", func
    yield "nfl.open", nfl.open
    from nfl import cli

    yield "nfl.cli.main", cli.main


def test_every_public_function_has_a_docstring():
    missing = [name for name, func in _public_callables() if not (func.__doc__ or "").strip()]
    assert not missing, missing


def test_package_is_typed():
    assert (Path(nfl.__file__).parent / "py.typed").is_file()
    hints = inspect.signature(nfl.Index.bulk_load).parameters
    assert all(p.annotation is not inspect.Parameter.empty for n, p in hints.items() if n != "cls")
    assert os.path.basename(nfl.__file__) == "__init__.py"
