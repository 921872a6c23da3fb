"""The stateful SortedDict checks again, with a flow forced on.

Each machine gets a flow trained on a different key set than the one it
builds from, so slots, buckets and ties in z all move; correctness must not
depend on the flow's quality.  Flows are trained once per session (small).
"""
import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import nfl
from index_model import IndexMachine, initial_keys

pytest.importorskip("torch", reason="training a flow needs torch (pip install 'nfl[train]')")

SETTINGS = settings(max_examples=30, stateful_step_count=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@functools.lru_cache(maxsize=None)
def trained_flow(dtype):
    keys = initial_keys("lognormal", 20_000, 7, dtype)
    return nfl.Flow.train(keys, sample=0.5, epochs=3, seed=0, progress=False)


def machine(dtype):
    class FlowMachine(IndexMachine):
        key_dtype = dtype

        def __init__(self):
            type(self).flow = trained_flow(dtype)
            super().__init__()

    return FlowMachine


TestUint64Flow = machine("uint64").TestCase
TestInt64Flow = machine("int64").TestCase
TestFloat64Flow = machine("float64").TestCase
for _case in (TestUint64Flow, TestInt64Flow, TestFloat64Flow):
    _case.settings = SETTINGS
del _case


@pytest.mark.parametrize("dtype", ["uint64", "int64", "float64"])
def test_flow_on_index_reports_flow(dtype):
    keys = initial_keys("lognormal", 5000, 3, dtype)
    idx = nfl.Index.bulk_load(keys, flow=trained_flow(dtype))
    st = idx.stats()
    assert st["flow_enabled"] and idx.flow is trained_flow(dtype)
    assert st["tail_conflicts_flow"] is not None
    assert list(idx.keys()) == np.sort(keys).tolist()
