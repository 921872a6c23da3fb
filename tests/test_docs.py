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


def _modules_with_examples():
    """Every module of the package whose source holds a docstring example (>>>)."""
    names = []
    for path in sorted((ROOT / "nfl").rglob("*.py")):
        if ">>>" in path.read_text():
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


#: Modules whose docstrings carry examples; each is run with doctest (a new example anywhere runs too).
DOCTEST_MODULES = _modules_with_examples()


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


#: The public classes, beyond nfl.__all__: what Index.bulk_load and the views hand out, and
#: nfl.cluster's (imported only where Ray is).
def _public_classes():
    from nfl import views
    from nfl.index import ObjectIndex

    classes = [getattr(nfl, name) for name in nfl.__all__ if inspect.isclass(getattr(nfl, name))]
    classes += [ObjectIndex, views.KeysView, views.ValuesView, views.ItemsView]
    try:
        from nfl import cluster
    except ImportError:  # no Ray: nfl.cluster is an extra
        return classes
    return classes + [getattr(cluster, name) for name in cluster.__all__]


#: Dunder methods a class of ours defines that are part of its public behaviour.
_PUBLIC_DUNDERS = {"__init__", "__getitem__", "__setitem__", "__delitem__", "__contains__", "__len__",
                   "__iter__", "__reversed__", "__eq__", "__enter__", "__exit__"}
#: A contract names what goes wrong (an exception, or that nothing is raised) and what it costs.
RAISES = re.compile(r"raise|error|exception|warning", re.I)
COST = re.compile(r"\bO\(|\bcost|one native call|one native read|one (Ray )?call", re.I)


def _members():
    """(name, function or property, kind) of every public member of the public classes that
    nfl's own code defines (what collections.abc or object define is theirs to document);
    kind is "property", "python" or "native" (a method of the C base, nfl._index.Core)."""
    from nfl import _index

    for cls in _public_classes():
        for owner in cls.__mro__:
            if not owner.__module__.startswith("nfl"):
                continue
            for name, member in vars(owner).items():
                if name.startswith("_") and name not in _PUBLIC_DUNDERS:
                    continue
                if name in vars(cls) and owner is not cls:
                    continue  # overridden: checked where the class defines it
                qual = f"{cls.__name__}.{name}"
                if isinstance(member, property):
                    yield qual, member.fget, "property"
                elif owner is _index.Core and callable(member):
                    yield qual, member, "native"
                elif callable(getattr(member, "__func__", member)) and not inspect.isclass(member):
                    yield qual, getattr(member, "__func__", member), "python"


def _functions():
    yield "nfl.open", nfl.open
    from nfl import cli

    yield "nfl.cli.main", cli.main
    for name in nfl.__all__:
        if inspect.isclass(getattr(nfl, name)):
            yield f"nfl.{name}", getattr(nfl, name)


def _undocumented():
    """Public members and functions without a docstring (an override inherits the contract of
    the method it overrides, as help() shows it)."""
    missing = [name for name, func, _ in _members() if not (inspect.getdoc(func) or "").strip()]
    return missing + [name for name, obj in _functions() if not (obj.__doc__ or "").strip()]


def _without_contract():
    """Python methods and functions whose docstring does not name exceptions and cost.

    A method of the C base (nfl._index.Core, whose docstrings live in native/pyindex.c) is
    covered by the class docstring of Index instead (test_native_methods_are_in_the_class_contract)."""
    vague = [name for name, func, kind in _members()
             if kind == "python" and not (RAISES.search(inspect.getdoc(func) or "") and COST.search(inspect.getdoc(func) or ""))]
    return vague + [name for name, obj in _functions() if not inspect.isclass(obj)
                    and not (RAISES.search(inspect.getdoc(obj)) and COST.search(inspect.getdoc(obj)))]


def test_every_public_function_has_a_docstring():
    assert len(list(_members())) > 100  # the index, durable index, flow, views: the walk found them
    missing = _undocumented()
    assert not missing, missing


def test_every_public_method_states_its_exceptions_and_cost():
    vague = _without_contract()
    assert not vague, f"docstrings that do not state exceptions and cost: {vague}"


def test_native_methods_are_in_the_class_contract():
    class_doc = inspect.getdoc(nfl.Index)
    native = sorted({name.split(".")[1] for name, _, kind in _members() if kind == "native"})
    assert native  # the single-key path is C
    assert RAISES.search(class_doc) and COST.search(class_doc)
    unnamed = [n for n in native if not n.startswith("_") and f"{n}(" not in class_doc]
    assert not unnamed, unnamed


def test_the_check_catches_a_missing_contract(monkeypatch):
    """The checks above fail for a public method without a docstring or with a vague one."""
    def bare(self):
        pass

    def vague(self):
        """Does something."""

    monkeypatch.setattr(nfl.Index, "bare", bare, raising=False)
    monkeypatch.setattr(nfl.Flow, "vague", vague, raising=False)
    assert "Index.bare" in _undocumented()
    assert {"Index.bare", "Flow.vague"} <= set(_without_contract())


def test_package_is_typed():
    assert (Path(nfl.__file__).parent / "py.typed").is_file()
    hints = inspect.signature(nfl.Index.bulk_load).parameters
    assert all(p.annotation is not inspect.Parameter.empty for n, p in hints.items() if n != "cls")
    assert os.path.basename(nfl.__file__) == "__init__.py"
