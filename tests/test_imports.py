"""No import circle inside nfl/: every module's import statements, at the top or inside functions.

The graph has an edge from module A to module B for every `import B`, `from
B import x` or `from B import submodule` in A, wherever it stands (a lazy
import inside a function closes a circle just as surely when it runs).  The
implicit import of a package's __init__ by its submodules is not an edge: a
package that re-exports its submodules is not a circle.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nfl"


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def extension_modules() -> set:
    """The compiled modules in nfl/ (nfl._native, nfl._index): leaves that import nothing of nfl."""
    return {module_name(p.with_name(p.name.split(".")[0] + ".py")) for p in PACKAGE.rglob("*.so")}


def imports_of(name: str, path: pathlib.Path, known: set) -> set:
    """The nfl modules that the module imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package upwards
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict:
    mods = modules()
    leaves = extension_modules()
    graph = {name: imports_of(name, path, set(mods) | leaves) for name, path in mods.items()}
    return graph | {name: set() for name in leaves - set(graph)}


def circles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_inside_nfl():
    graph = import_graph()
    assert "nfl.index" in graph and graph["nfl.index"], "the walk found no imports: is it broken?"
    assert circles(graph) == []


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_circle_finder_finds_circles(graph, expected):
    assert circles(graph) == expected


def test_lazy_imports_are_edges(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from nfl import switch\n    import nfl.index\n")
    assert imports_of("nfl.m", source, {"nfl.switch", "nfl.index", "nfl"}) == {"nfl.switch", "nfl.index"}
