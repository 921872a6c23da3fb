"""Crash-test child: random write batches on a durable index, each acknowledged on stdout.

    python tests/crash_child.py PATH SEED RUN [VALUE_DTYPE]

Prints "ready" once the index is open, then runs batch(SEED, RUN, 0), (.., 1), ...
and prints each batch's number after its write call has returned, until it is
killed.  The batches are a pure function of (seed, run, i), so the parent can
replay the acknowledged ones on a dict model (apply_to_model).
"""
import sys

import numpy as np

KEY_SPACE = 2048  # small, so that batches overwrite and delete each other's keys
KINDS = ("put_many", "delete_many", "insert_many", "setitem", "delitem", "checkpoint")
WEIGHTS = (0.4, 0.2, 0.15, 0.1, 0.1, 0.05)


def as_objects(values):
    """The object values a run with value_dtype "object" writes for int64 values."""
    return [(f"v{v}", v, str(v).encode() * 3) if v % 3 else None for v in values.tolist()]


def batch(seed: int, run: int, i: int, value_dtype: str = "int64"):
    """(kind, keys, values) of batch i of a run: uint64 keys, int64 (or object) values."""
    rng = np.random.default_rng([seed, run, i])
    kind = KINDS[rng.choice(len(KINDS), p=WEIGHTS)]
    n = 1 if kind in ("setitem", "delitem") else int(rng.integers(1, 400))
    keys = rng.integers(0, KEY_SPACE, n).astype(np.uint64)
    values = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)
    if value_dtype == "object":
        values = np.fromiter(as_objects(values), dtype=object, count=n)
    return kind, keys, values


def apply_to_index(db, kind, keys, values) -> None:
    if kind == "checkpoint":
        db.checkpoint()
    elif kind == "setitem":
        db[int(keys[0])] = values.tolist()[0]
    elif kind == "delitem":
        db.delete(int(keys[0]))
    elif kind == "delete_many":
        db.delete_many(keys)
    else:
        getattr(db, kind)(keys, values)


def apply_to_model(model: dict, kind, keys, values) -> None:
    """What the write call does, on a dict: batches apply in array order."""
    for k, v in zip(keys.tolist(), values.tolist()):
        if kind in ("put_many", "setitem"):
            model[k] = v
        elif kind == "insert_many":
            model.setdefault(k, v)
        elif kind in ("delete_many", "delitem"):
            model.pop(k, None)


def main(path, seed, run, value_dtype="int64"):
    import nfl

    db = nfl.open(path, key_dtype="uint64", value_dtype=value_dtype, sync="always")
    print("ready", flush=True)
    i = 0
    while True:
        apply_to_index(db, *batch(seed, run, i, value_dtype))
        print(i, flush=True)
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5])
