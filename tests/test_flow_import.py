"""Importing nfl, loading and applying a flow, and bulk loading with any flow= need neither torch nor numba (torch: training)."""
import subprocess
import sys

SCRIPT = """
import sys, numpy as np
import nfl
assert "torch" not in sys.modules, "import nfl imported torch"
from nfl.flow import Flow, layout
flow = Flow(layout.pack(layout.Spline("linear", 1e-3, 0.0, np.array([0.0, 0.5, 1.0]), np.array([1.0, 3.0]))))
flow.save(sys.argv[1])
z = nfl.Flow.load(sys.argv[1]).transform(np.arange(1000, dtype=np.uint64))
assert np.all(np.diff(z) >= 0)
for heavy in ("torch", "numba"):
    assert heavy not in sys.modules, heavy + " was imported"
print("ok")
"""


def test_import_nfl_and_use_a_flow_without_torch_or_numba(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "f.flow")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


TRAIN_SCRIPT = """
import sys
sys.modules["numba"] = None  # importing numba now fails: the index path must not need it
import numpy as np
import nfl
keys = np.unique((np.random.default_rng(0).lognormal(0, 2, 30_000) * 1e9).astype(np.uint64))
for flow in ("off", "auto", "on"):
    idx = nfl.Index.bulk_load(keys, flow=flow)
    idx._check()
    assert idx.stats()["flow_enabled"] == (flow == "on" or idx.stats()["flow_reason"].startswith("auto: on"))
print("ok")
"""


def test_bulk_load_with_any_flow_needs_no_numba():
    """The switch, training and the build run without numba (the wheel's train extra has none)."""
    import pytest

    pytest.importorskip("torch", reason="training a flow needs torch")
    out = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"
