"""Progress over the whole job: bulk_load(progress=True) shows every step on one bar, the
flow's training included; Flow.train(progress=True) its knots, epochs and bin choice."""
import re

import numpy as np
import pytest

import nfl


def lognormal(n, seed=0):
    return np.unique((np.random.default_rng(seed).lognormal(0, 2, n + n // 8) * 1e9).astype(np.uint64))[:n]


def steps(err, job):
    """(done, total, text) of every progress line of job on stderr."""
    return [(int(m[1]), int(m[2]), m[3]) for m in re.finditer(rf"^{job}: (\d+)/(\d+) (.*) \(\d+\.\d s\)$", err, re.M)]


def test_bulk_load_shows_the_training_on_its_own_bar(capsys):
    pytest.importorskip("torch")
    nfl.Index.bulk_load(lognormal(20_000), flow="on", progress=True)
    err = capsys.readouterr().err
    lines = steps(err, "bulk load")
    assert lines and "training flow" not in err  # one bar: the training joins the load's
    texts = [t for _, _, t in lines]
    assert any("knots placed" in t for t in texts) and any(t.startswith("epoch 1") for t in texts)
    assert any("measured" in t for t in texts) and "building the tree" in texts
    done, total, _ = lines[-1]
    assert done == total and [d for d, _, _ in lines] == sorted(d for d, _, _ in lines)


def test_flow_train_covers_every_step(capsys):
    pytest.importorskip("torch")
    nfl.Flow.train(lognormal(20_000), epochs=3, progress=True)
    lines = steps(capsys.readouterr().err, "training flow")
    assert lines[-1][0] == lines[-1][1]
    assert sum(t.startswith("epoch") for _, _, t in lines) >= 1 and any("bins" in t for _, _, t in lines)


def test_no_progress_unless_asked(capsys):
    nfl.Index.bulk_load(lognormal(5_000), flow="off")
    nfl.Index.bulk_load(lognormal(5_000), flow="off", progress=False)
    assert capsys.readouterr().err == ""
