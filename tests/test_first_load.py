"""A process's first bulk_load does no more than its next ones: no lazy import on the index path.

bench.cold measures the cost; this checks the cause that a code change can
bring back: a module imported by the first load (numpy.ma alone costs 30-40
ms, through np.ma.MaskedArray or np.percentile).
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = """
import sys
import numpy as np
keys = np.random.default_rng(1).permutation(np.arange(1, 50_001, dtype=np.{dtype}) * 3)
import nfl
before = set(sys.modules)
idx = nfl.Index.bulk_load(keys, flow="off")
idx.get_many(keys[:100]); idx.contains_many(keys[:100])
print(sorted(set(sys.modules) - before))
"""


@pytest.mark.parametrize("dtype", ["uint64", "int64", "float64"])
def test_first_bulk_load_imports_nothing(dtype):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", CHILD.format(dtype=dtype)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"the first bulk_load imported {done.stdout.strip()}"
