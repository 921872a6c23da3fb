"""Every command line's error paths: a user's mistake is one line on stderr and exit 2, found
before any work starts; help text on every option; a real child process for the exit codes."""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workloads.sosd import write_keys

ROOT = Path(__file__).resolve().parent.parent


def one_line_error(capsys, prog):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith(f"{prog}"), err
    return err


def exit_status(main, argv):
    """main(argv)'s exit status, whether it returns it or argparse exits."""
    try:
        return main(argv)
    except SystemExit as done:
        return done.code


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if the bench runner starts reading keys or building streams."""
    from bench import __main__ as cli

    def started(*args, **kwargs):
        raise AssertionError("work started before the inputs were checked")

    monkeypatch.setattr(cli, "execute", started)
    monkeypatch.setattr(cli, "_load_keys", started)
    return cli


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NFL_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


BENCH_MISTAKES = [
    (["quick", "--indexes", "nfl,bogus"], "unknown index ['bogus']; choose from"),
    (["run", "--dataset", "nosuch", "--workload", "workloada"], "unknown key set 'nosuch'"),
    (["run", "--dataset", "books_200M", "--workload", "workloada"], "fetch books"),
    (["run", "--dataset", "osm_tzb_s2cells_4M", "--workload", "workloada"], "set NFL_DATA_DIR"),
    (["run", "--keys", "/no/such/file_uint64", "--workload", "workloada"], "no such file: /no/such/file_uint64"),
    (["run", "--dataset", "default", "--workload", "nope"], "unknown workload 'nope'"),
    (["run", "--dataset", "default", "--workload", "paper-R101"], "must be 0..100"),
    (["run", "--dataset", "default"], "the following arguments are required: --workload"),
    (["quick", "--ops", "0"], "argument --ops: must be > 0"),
    (["quick", "--batch", "ten"], "argument --batch: expected a whole number"),
    (["quick", "-p", "recordcount"], "-p expects key=value"),
    (["bogus"], "invalid choice: 'bogus'"),
]


@pytest.mark.parametrize("argv, message", BENCH_MISTAKES, ids=[" ".join(a) for a, _ in BENCH_MISTAKES])
def test_bench_mistakes_exit_2_before_any_work(argv, message, no_work, empty_data_dir, capsys):
    assert exit_status(no_work.main, argv) == 2
    assert message in one_line_error(capsys, "python -m bench")


def test_bench_report_of_a_folder_without_results(tmp_path, capsys):
    from bench.__main__ import main

    assert main(["report", str(tmp_path)]) == 2
    assert "results.json does not exist" in one_line_error(capsys, "python -m bench")


@pytest.fixture
def keyfile(tmp_path):
    path = tmp_path / "k_uint64"
    write_keys(path, np.arange(0, 3000, 3, dtype=np.uint64))
    return path


WORKLOADS_MISTAKES = [
    (["keys", "--dist", "nope", "-o", "OUT"], "invalid choice: 'nope'"),
    (["keys", "--dataset", "nosuch", "-o", "OUT"], "unknown key set 'nosuch'"),
    (["keys", "--dist", "uniform", "--n", "-5", "-o", "OUT"], "argument --n"),
    (["keys", "--dataset", "fb_200M", "-o", "OUT"], "fetch fb"),
    (["ops", "--workload", "nope", "--keys", "KEYS", "-o", "OUT"], "unknown workload 'nope'"),
    (["ops", "--workload", "workloada", "--keys", "wiki_ts_200M", "-o", "OUT"], "fetch wiki"),
    (["ops", "--workload", "workloada", "--keys", "KEYS", "-p", "readproportion=x", "-o", "OUT"], "readproportion"),
    (["info", "/no/such/file"], "no such file: /no/such/file"),
    (["fetch", "books2"], "invalid choice: 'books2'"),
    ([], "the following arguments are required: command"),
]


@pytest.mark.parametrize("argv, message", WORKLOADS_MISTAKES, ids=[" ".join(a) for a, _ in WORKLOADS_MISTAKES])
def test_workloads_mistakes_exit_2(argv, message, keyfile, tmp_path, empty_data_dir, capsys):
    from workloads.__main__ import main

    out = tmp_path / "out_uint64"
    argv = [str(out) if a == "OUT" else str(keyfile) if a == "KEYS" else a for a in argv]
    assert exit_status(main, argv) == 2
    assert message in one_line_error(capsys, "python -m workloads")
    assert not out.exists()


def test_fetch_without_zstd_says_how_to_get_it(monkeypatch, tmp_path, capsys):
    from workloads import fetch
    from workloads.__main__ import main

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(fetch, "download", lambda *a, **k: pytest.fail("downloaded without zstd"))
    assert main(["fetch", "books", "--dir", str(tmp_path)]) == 2
    assert "install it (apt-get install zstd)" in one_line_error(capsys, "python -m workloads fetch")


TOOL_MISTAKES = [
    ("flow_report", ["--datasets", "lognormal,bogus"], "unknown key set 'bogus'"),
    ("flow_report", ["--n", "0"], "argument --n: must be > 0"),
    ("ordered", ["--flow", "of"], "argument --flow: invalid choice: 'of'"),
    ("scale", ["--n", "1e6"], "argument --n: expected a whole number"),
    ("threads", ["--rounds", "0"], "argument --rounds: must be > 0"),
    ("layout", ["--ll", "-1"], "argument --ll: must be > 0"),
]


@pytest.mark.parametrize("tool, argv, message", TOOL_MISTAKES, ids=[f"{t} {' '.join(a)}" for t, a, _ in TOOL_MISTAKES])
def test_bench_tools_mistakes_exit_2(tool, argv, message, capsys):
    import importlib

    module = importlib.import_module(f"bench.{tool}")
    assert exit_status(module.main, argv) == 2
    assert message in one_line_error(capsys, f"python -m bench.{tool}")


def test_layout_without_valgrind_stops_before_training(monkeypatch, capsys):
    from bench import layout

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert exit_status(layout.main, []) == 2
    assert "valgrind is needed" in one_line_error(capsys, "python -m bench.layout")


def _parsers():
    import importlib

    from bench.__main__ import parser as bench_parser
    from nfl.cli import _parser as nfl_parser
    from workloads.__main__ import _parser as workloads_parser

    yield "python -m bench", bench_parser()
    yield "python -m workloads", workloads_parser()
    yield "nfl", nfl_parser()
    for tool in ("cold", "flow_report", "layout", "ordered", "scale", "threads"):
        yield f"bench.{tool}", importlib.import_module(f"bench.{tool}").parser()


def _actions(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield parser.prog, action


def test_every_option_has_help():
    missing = [f"{prog}: {'/'.join(action.option_strings) or action.dest}"
               for _, top in _parsers() for prog, action in _actions(top) if not action.help]
    assert not missing, missing


def test_real_exit_codes_in_child_processes(tmp_path):
    """As a shell sees them: 2 and one line for a mistake, 0 and the version for nfl --version."""
    from nfl import __version__

    def run(*argv):
        return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)

    for argv in (["-m", "bench", "quick", "--indexes", "bogus"], ["-m", "workloads", "info", str(tmp_path / "x")]):
        done = run(*argv)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    done = run("-m", "nfl.cli", "--version")
    assert done.returncode == 0 and done.stdout.strip() == f"nfl {__version__}"
