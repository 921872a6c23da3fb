"""Would a value_dtype="bytes" layout (an arena in C) beat object values for byte strings?

An arena keeps each value's bytes in one big buffer and the tree's 8-byte value
slot holds its offset: no Python object per value until read.  Instead of
building one, this estimates what it would cost from its parts, with the same
keys and byte strings of --lengths bytes, median of --repeat runs (ratio
arena / object < 1: the arena would be faster or smaller):

- read, batch: ObjectIndex.get_many (returns the stored bytes objects) against
  the arena: the int64 index's get_many (the offsets) plus, per value, a fresh
  bytes object made from a random place of the buffer (numpy gathers the rows,
  then makes the objects: one copy more than an arena needs).
- read, batch, fused lookup: today's get_many of object values looks keys up
  one at a time; with the int path's fused batch lookup it would cost the
  int64 get_many plus taking a reference to each value (at random places: the
  object's header is touched, as the arena's bytes are).  Against the arena.
- read, per op: idx[k] on the object index against the int64 index's idx[k]
  plus making one bytes object (as above).
- write, batch: ObjectIndex.put_many of the bytes objects against the int64
  index's put_many of offsets plus one copy of the bytes into a buffer (free
  space management on overwrite not counted: a lower bound).
- memory per value: the bytes objects' size (sys.getsizeof, before the
  allocator rounds it up) against the length + an 8-byte length word.
- snapshot: pickle (protocol 5, what save() writes for object values) dumps
  and loads of the values against copying the arena's bytes.

    python -m bench.arena [--n 200000] [--lengths 16,100,1000] [--repeat 5]
"""
import pickle
import sys

import numpy as np

from .timing import median_s


def _median_ns(fn, repeat):
    return median_s(fn, repeat) * 1e9


FIGURES = ("read batch", "read batch, fused lookup", "read per op", "write batch", "memory per value",
           "snapshot dump+load")


def _values(n, length, seed):
    """n distinct byte strings of `length` printable bytes, and the bytes per value Python
    takes for them (sys.getsizeof: the object's size, before the allocator rounds it up)."""
    raw = np.random.default_rng(seed).integers(33, 127, (n, length), dtype=np.uint8)
    values = raw.view(f"S{length}").ravel().tolist()
    return raw, values, sum(map(sys.getsizeof, values)) / n


def measure(n=200_000, length=100, repeat=5, batch=256, seed=1):
    """{figure: ns per value (or bytes per value)} for byte strings of `length`, n keys."""
    import nfl

    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, 2**62, 2 * n, dtype=np.uint64))[:n]
    rng.shuffle(keys)
    raw, values, allocated = _values(n, length, seed)
    objects = np.fromiter(values, dtype=object, count=n)
    obj = nfl.Index.bulk_load(keys, objects, flow="off")
    ints = nfl.Index.bulk_load(keys, np.arange(n, dtype=np.int64), flow="off")
    probe = keys[rng.integers(0, n, n)]
    batches = [probe[s : s + batch] for s in range(0, n, batch)]
    rows = raw.view(f"S{length}").ravel()
    arena = np.ascontiguousarray(raw).ravel()
    positions = [rng.integers(0, n, q.size) for q in batches]  # where each read's value lies
    out = {}

    def get_batches(index):
        for q in batches:
            index.get_many(q)

    def make_bytes():
        for at in positions:
            rows[at].astype(object)  # no byte is 0, so the S dtype strips nothing

    def take_references():
        for at in positions:
            objects.take(at)

    make = _median_ns(make_bytes, repeat) / n  # per value: gather its bytes, make a bytes object
    offsets = _median_ns(lambda: get_batches(ints), repeat) / n
    out["read batch: object values"] = _median_ns(lambda: get_batches(obj), repeat) / n
    out["read batch: arena"] = offsets + make
    out["read batch, fused lookup: object values"] = offsets + _median_ns(take_references, repeat) / n
    out["read batch, fused lookup: arena"] = offsets + make
    puts = [(probe[s : s + batch], objects[s : s + batch], np.arange(s, min(s + batch, n), dtype=np.int64))
            for s in range(0, n, batch)]
    room = np.empty(batch * length, dtype=np.uint8)

    def put_objects():
        for k, v, _ in puts:
            obj.put_many(k, v)

    def put_arena():
        for k, _, offsets in puts:
            ints.put_many(k, offsets)
            room[: offsets.size * length] = arena[offsets[0] * length : (offsets[0] + offsets.size) * length]

    out["write batch: object values"] = _median_ns(put_objects, repeat) / n
    out["write batch: arena"] = _median_ns(put_arena, repeat) / n
    few = probe[: min(n, 100_000)].tolist()

    def get_one(index):
        for k in few:
            index[k]

    out["read per op: object values"] = _median_ns(lambda: get_one(obj), repeat) / len(few)
    out["read per op: arena"] = _median_ns(lambda: get_one(ints), repeat) / len(few) + make
    out["memory per value: object values"] = allocated
    out["memory per value: arena"] = length + 8
    out["snapshot dump+load: object values"] = _median_ns(
        lambda: pickle.loads(pickle.dumps(values, protocol=5)), repeat) / n
    out["snapshot dump+load: arena"] = _median_ns(lambda: bytes(memoryview(arena)), repeat) / n
    return out


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench.arena", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--lengths", default="16,100,1000")
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    print(f"# python -m bench.arena --n {a.n} --lengths {a.lengths} --repeat {a.repeat}")
    print("| bytes | figure | object values | arena | arena / object |")
    print("|---|---|---|---|---|")
    for length in (int(x) for x in a.lengths.split(",")):
        out = measure(a.n, length, a.repeat)
        for figure in FIGURES:
            (o_name, o), (_, ar) = [(k, v) for k, v in out.items() if k.startswith(figure + ":")]
            unit = "B" if figure.startswith("memory") else "ns"
            print(f"| {length} | {figure} ({unit}) | {o:,.1f} | {ar:,.1f} | {ar / o:.2f} |")


if __name__ == "__main__":
    main()
