"""Importing nfl, and loading and applying a flow, pull in neither torch nor numba."""
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
