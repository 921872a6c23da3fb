"""`python -m bench quick` end to end, as a user runs it (small --ops to stay fast)."""
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _missing():
    try:
        import nfl._native  # noqa: F401
        import workloads.datasets  # noqa: F401
        import workloads.stream  # noqa: F401
    except ImportError as e:
        return f"bench quick needs nfl._native and workloads.datasets/stream: {e}"
    return None


@pytest.mark.skipif(_missing() is not None, reason=str(_missing()))
def test_quick_end_to_end(tmp_path):
    out = tmp_path / "quick"
    proc = subprocess.run([sys.executable, "-m", "bench", "quick", "--ops", "3000", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "report.md" in proc.stdout and "Mops/s" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    ok = {(r["workload"], r["index"], r["path"]) for r in results["runs"] if r["status"] == "ok"}
    for workload in ("workloadc", "workloada"):
        assert {(workload, "nfl", "batch"), (workload, "nfl", "per-op-native"), (workload, "nfl", "per-op"),
                (workload, "sorteddict", "per-op")} <= ok
    assert ("workloadc", "pandas", "batch") in ok and ("workloada", "pandas", "batch") not in ok
    assert ("workloadc", "searchsorted", "batch") in ok
    assert ("workloada", "pygm", "per-op") not in ok
    assert results["timer"]["native"]["overhead_ns"] > 0
    for name in ("report.md", "ycsb.txt", "throughput.png", "latency_default_workloadc.png"):
        assert (out / name).stat().st_size > 0


def test_wrong_results_exit_nonzero_with_the_reason(tmp_path, monkeypatch):
    """The CLI turns a Mismatch into a red panel and exit status 1."""
    from bench import __main__ as cli
    from bench.check import Mismatch

    stream = SimpleNamespace(op=np.zeros(1, np.uint8), key=np.array([42], np.uint64), expected=np.array([5]))

    def wrong(*args, **kwargs):
        raise Mismatch("x", "per-op", stream, 0, 6)

    monkeypatch.setattr(cli, "execute", wrong)
    assert cli.main(["quick", "--out", str(tmp_path)]) == 1


def test_an_unknown_path_is_a_usage_error(tmp_path, capsys):
    from bench import __main__ as cli

    assert cli.main(["quick", "--paths", "batch,per-op-natve", "--out", str(tmp_path)]) == 2
    assert "per-op-natve" in capsys.readouterr().err
