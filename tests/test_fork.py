"""fork() while other threads use an index: the child can use it at once, the parent loses nothing.

native/fork.c takes every index's lock around fork(), so the child finds each
index between two calls, whole, and unlocked.  A durable index in the child
reads, and raises ForkedError on writes (the log is the parent's).
"""
import os
import signal
import threading
import time

import numpy as np
import pytest

import nfl
from nfl.storage import ForkedError

FORKS = 100
BATCH = 500
RING = 20  # batch slots per writer: the index stays small, so a child's reads stay fast
CHILD_LIMIT = 10.0  # seconds a child may take to read and exit: far beyond a loaded machine's
# scheduling delays; a deadlocked child never exits


def batch_keys(writer, generation):
    """The keys of a writer's batch: slot generation % RING of its own key range."""
    return np.arange(BATCH, dtype=np.uint64) + np.uint64(writer * 2**40 + generation % RING * BATCH)


def child_checks(index, durable):
    """Runs in the child: each writer's batches must be whole (one generation each). Exit code 0 if so."""
    for writer in range(2):
        keys, values = index.range(writer * 2**40, (writer + 1) * 2**40)
        if keys.size % BATCH or not np.array_equal(keys, batch_keys(writer, 0)[0] + np.arange(keys.size, dtype=np.uint64)):
            return 3
        if (values.reshape(-1, BATCH) != values.reshape(-1, BATCH)[:, :1]).any():
            return 4
    if len(index) != index.scan(0, 10**9)[0].size:
        return 5
    if durable:
        try:
            index.put_many([1], [1])
            return 6
        except ForkedError:
            pass
    return 0


def wait_bounded(pid, limit):
    """The child's exit code, or None after killing it if it is not done within limit seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.parametrize("durable", [False, True], ids=["index", "durable"])
def test_forks_while_threads_write_and_scan(tmp_path, durable):
    index = nfl.open(tmp_path / "db", sync="none") if durable else nfl.Index()
    acked = [0, 0]  # batches acknowledged per writer
    stop = threading.Event()
    errors = []

    def writer(w):
        try:
            while not stop.is_set():
                index.put_many(batch_keys(w, acked[w]), np.full(BATCH, acked[w]))
                acked[w] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    def scanner():
        try:
            while not stop.is_set():
                index.scan(0, 2000)
                index.range(2**40, 2**40 + 5000)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)] + [threading.Thread(target=scanner)]
    for t in threads:
        t.start()
    outcomes = []
    try:
        for _ in range(FORKS):
            pid = os.fork()
            if pid == 0:
                code = 2
                try:
                    code = child_checks(index, durable)
                finally:
                    os._exit(code)
            outcomes.append(wait_bounded(pid, CHILD_LIMIT))
            if outcomes[-1] != 0:
                break  # the first hung or failed child fails the test; no need to wait for more
            time.sleep(0.001)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert outcomes == [0] * FORKS, f"hung (None) or failed child after {len(outcomes) - 1} good ones: {outcomes[-1]}"
    assert min(acked) > 0
    def final(idx):
        return [idx.range(w * 2**40, (w + 1) * 2**40)[1].tolist() for w in range(2)]

    last = [[slot + (acked[w] - 1 - slot) // RING * RING for slot in range(min(acked[w], RING))] for w in range(2)]
    expect = [np.repeat(last[w], BATCH).tolist() for w in range(2)]
    assert final(index) == expect  # the parent lost nothing: every slot holds its last acknowledged batch
    if durable:
        index.close()
        with nfl.open(tmp_path / "db") as db:
            assert final(db) == expect
