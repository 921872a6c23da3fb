"""The sdist and the wheel a user gets: built from this checkout, installed into a fresh venv.

One venv per session (building and installing take most of a minute) holds
only the wheel and its run-time dependencies (numpy, cffi: no numba, no
torch, no rich); every check runs in a child process started from a
directory outside the checkout, with no PYTHONPATH, so it sees only what
was installed.
"""
import os
import subprocess
import sys
import tarfile
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd, cwd, check=True, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, **kw)
    if check and out.returncode != 0:
        raise AssertionError(f"{cmd} exited {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


@pytest.fixture(scope="session")
def dist(tmp_path_factory):
    """(sdist, wheel): the sdist built from the checkout, the wheel built from the sdist."""
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", out, ROOT], cwd=out)
    (sdist,) = out.glob("nfl-*.tar.gz")
    _run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", out, sdist], cwd=out)
    (wheel,) = out.glob("nfl-*.whl")
    return sdist, wheel


@pytest.fixture(scope="session")
def venv_python(dist, tmp_path_factory):
    """The python of a fresh venv holding the wheel and its dependencies only."""
    where = tmp_path_factory.mktemp("venv")
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", dist[1]], cwd=where)
    return python


@pytest.fixture
def elsewhere(tmp_path):
    """A working directory outside the checkout."""
    assert ROOT not in tmp_path.parents
    return tmp_path


def test_sdist_holds_everything_the_build_reads(dist):
    with tarfile.open(dist[0]) as tar:
        names = {Path(*Path(n).parts[1:]).as_posix() for n in tar.getnames()}
    wanted = {p.relative_to(ROOT).as_posix() for p in (ROOT / "native").glob("*.[ch]")}
    wanted |= {"native/build_native.py", "setup.py", "pyproject.toml", "LICENSE", "README.md",
               "workloads/data/ts_git_commits_200K_uint64", "workloads/ycsb/workloada", "nfl/py.typed"}
    assert wanted <= names, sorted(wanted - names)
    assert not [n for n in names if n.endswith((".so", ".o"))]


def test_wheel_is_abi3_and_installs_no_generic_names(dist):
    wheel = dist[1]
    assert wheel.name.endswith("-cp310-abi3-linux_x86_64.whl") or "-cp310-abi3-" in wheel.name, wheel.name
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        tops = {n.split("/")[0] for n in z.namelist()}
        metadata = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert {t for t in tops if not t.endswith(".dist-info")} == {"nfl", "nfl_bench", "nfl_workloads"}
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert sorted(r.split()[1].split(">")[0] for r in requires) == ["cffi", "numpy"], requires
    assert "License-Expression: MIT" in metadata and "Classifier: Typing :: Typed" in metadata


INDEX_PATH = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    import nfl
    warnings.simplefilter("ignore")
    keys = np.unique((np.random.default_rng(1).lognormal(0, 2, 110_000) * 1e9).astype(np.uint64))[:100_000]
    idx = nfl.Index.bulk_load(keys, flow="auto")
    assert len(idx) == keys.size and idx.get(int(keys[5])) == 5
    idx[1] = 7; assert idx[1] == 7 and 1 in idx
    assert idx.insert(2, 8) and idx.replace(2, 9) and idx.get(2) == 9
    del idx[2]; assert idx.get(2) is None
    values, found = idx.get_many(keys[:1000]); assert found.all() and (values == np.arange(1000)).all()
    idx.put_many(keys[:10], np.arange(10)); idx.delete_many(keys[:10])
    ks, vs = idx.range(int(keys[100]), int(keys[200])); assert ks.size == 100
    ks, vs = idx.scan(int(keys[100]), 5); assert (ks == keys[100:105]).all()
    assert idx.lower_bound(int(keys[300])) is not None and idx.min_key() == 1 and idx.max_key() == keys[-1]
    assert sum(1 for _ in idx.items()) == len(idx)
    idx.stats()
    idx.save("idx.nfl"); assert len(nfl.Index.load("idx.nfl")) == len(idx)
    with nfl.open("db") as db:
        db[1] = 10; db.put_many(keys[:10], np.arange(10)); db.checkpoint()
    with nfl.open("db") as db:
        assert db[1] == 10 and len(db) == 11
    if len(sys.argv) > 1:  # a saved flow: every flow= that names one, loaded without torch
        for flow in (sys.argv[1], nfl.Flow.load(sys.argv[1]), "off"):
            other = nfl.Index.bulk_load(keys, flow=flow)
            assert other.get(int(keys[7])) == 7
        assert nfl.Index.bulk_load(keys, flow=sys.argv[1]).stats()["flow_enabled"]
    for name in ("numba", "torch", "rich"):
        assert name not in sys.modules, name + " imported on the index path"
    print("index path ok", nfl.__version__, nfl.__file__)
""")


@pytest.fixture(scope="session")
def flow_file(tmp_path_factory):
    """A flow trained here (torch) and saved: the venv only loads it."""
    pytest.importorskip("torch")
    import numpy as np

    from nfl import Flow

    keys = np.unique((np.random.default_rng(1).lognormal(0, 2, 110_000) * 1e9).astype(np.uint64))[:100_000]
    path = tmp_path_factory.mktemp("flow") / "lognormal.flow"
    Flow.train(keys, progress=False).save(path)
    return path


def test_wheel_index_path_needs_only_numpy_and_cffi(venv_python, flow_file, elsewhere):
    listed = _run([venv_python, "-m", "pip", "list", "--format=freeze"], cwd=elsewhere).stdout.lower()
    assert "numba" not in listed and "torch" not in listed
    out = _run([venv_python, "-c", INDEX_PATH, flow_file], cwd=elsewhere)
    assert "index path ok" in out.stdout and str(ROOT) not in out.stdout


def test_installed_nfl_command_runs_from_anywhere(venv_python, elsewhere):
    """nfl --version and nfl info on the bare install (the tools' extras are not there: CI runs
    python -m nfl_bench quick outside the checkout after a full non-editable install)."""
    nfl = venv_python.parent / "nfl"
    from nfl import __version__

    assert _run([nfl, "--version"], cwd=elsewhere).stdout.strip() == f"nfl {__version__}"
    _run([venv_python, "-c", "import numpy as np, nfl; nfl.Index.bulk_load(np.arange(5, dtype=np.uint64),"
                             " flow='off').save('five.nfl')"], cwd=elsewhere)
    assert "size" in _run([nfl, "info", "five.nfl"], cwd=elsewhere).stdout
    for tool, extra in (("nfl_bench", "bench"), ("nfl_workloads", "analysis")):
        done = _run([venv_python, "-m", tool, "--help"], cwd=elsewhere, check=False)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert f'pip install "nfl[{extra}]"' in done.stderr


def test_sdist_installs(dist, venv_python, elsewhere):
    """pip builds and installs the sdist (with this interpreter's setuptools and cffi: the venv has neither)."""
    target = elsewhere / "from-sdist"
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", target,
          dist[0]], cwd=elsewhere)
    assert list((target / "nfl").glob("_native*.so"))
    out = _run([venv_python, "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n" + INDEX_PATH], cwd=elsewhere)
    assert str(target) in out.stdout


def test_tools_import_themselves_relatively():
    """bench/ and workloads/ run under two names (checkout: bench, installed: nfl_bench), so no
    module in them may import either by its checkout name: relative imports, or bench.workloads()."""
    import ast

    wrong = []
    for path in sorted((ROOT / "bench").glob("*.py")) + sorted((ROOT / "workloads").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            wrong += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                      if n.split(".")[0] in ("bench", "workloads")]
    assert not wrong, wrong
