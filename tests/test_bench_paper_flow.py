"""The paper's flow (2D2H2L BNAF) as a baseline: trains deterministically, and is not monotone."""
import numpy as np
import pytest

pytest.importorskip("torch")

from bench.paper_flow import PaperFlow  # noqa: E402


def test_paper_flow_trains_deterministically_and_is_not_monotone():
    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(0, 2**40, 30_000, dtype=np.uint64))
    a = PaperFlow.train(keys, seed=1, progress=False, epochs=3)
    b = PaperFlow.train(keys, seed=1, progress=False, epochs=3)
    assert np.array_equal(a.w1, b.w1) and np.array_equal(a.w2, b.w2)
    z = a.transform(keys)
    assert np.all(np.isfinite(z))
    # the partition encoder's fractional part saws: sorted keys do not give sorted z
    assert np.any(z[1:] < z[:-1])
