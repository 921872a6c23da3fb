"""The crash test: SIGKILL a writer at random moments; every acknowledged write must survive.

A child (crash_child.py) writes random batches to a durable index with
sync="always" and reports each acknowledged batch on a pipe.  The parent
kills it at a random moment, reopens the index and checks that its contents
equal a dict model after all acknowledged batches, or after those and the
one batch in flight (which may or may not have landed, but all or nothing).
The next child continues on the same directory, so recovery is tested on
top of recovery, across checkpoints and torn tails.

NFL_CRASH_KILLS (default 50) sets the number of kills, NFL_CRASH_SEED the seed.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nfl
from crash_child import apply_to_model, batch

CHILD = str(Path(__file__).with_name("crash_child.py"))


def kill_at_random(path, seed, run, delay, value_dtype):
    """Runs one child, kills it after delay seconds (counted from "ready" when it is > 0)."""
    proc = subprocess.Popen([sys.executable, CHILD, str(path), str(seed), str(run), value_dtype],
                            stdout=subprocess.PIPE, text=True)
    if delay > 0 and proc.stdout.readline().strip() != "ready":
        raise AssertionError(f"child exited early with code {proc.wait()}")
    time.sleep(abs(delay))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"child died on its own with code {proc.returncode}"
    lines = proc.stdout.read().split("\n")
    proc.stdout.close()
    return [int(s) for s in lines[:-1] if s != "ready"]  # a cut last line is not an ack


@pytest.mark.parametrize("value_dtype", ["int64", "object"])
def test_crash_recovery(tmp_path, value_dtype):
    kills = int(os.environ.get("NFL_CRASH_KILLS", "50"))
    seed = int(os.environ.get("NFL_CRASH_SEED", "0"))
    rng = np.random.default_rng(seed)
    path = tmp_path / "db"
    model, acked_total, in_flight_landed, started = {}, 0, 0, time.perf_counter()
    for run in range(kills):
        # mostly kill while writing; one in ten while starting up (imports, replay)
        delay = rng.uniform(0.0, 0.3) if rng.random() < 0.9 else -rng.uniform(0.0, 0.6)
        acked = kill_at_random(path, seed, run, delay, value_dtype)
        assert acked == list(range(len(acked))), "acknowledgements out of order"
        for i in acked:
            apply_to_model(model, *batch(seed, run, i, value_dtype))
        acked_total += len(acked)
        with nfl.open(path, key_dtype="uint64") as db:
            state = dict(db.items())
        if state != model:
            landed = dict(model)
            apply_to_model(landed, *batch(seed, run, len(acked), value_dtype))
            assert state == landed, (f"kill {run}: contents match neither the {len(acked)} acknowledged "
                                     "batches nor those and the one in flight")
            model, in_flight_landed = landed, in_flight_landed + 1
    print(f"\ncrash test: {kills} kills, {acked_total} acknowledged batches, "
          f"{in_flight_landed} in-flight batches landed, 0 failures, "
          f"{time.perf_counter() - started:.1f} s")
