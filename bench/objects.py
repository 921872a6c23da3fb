"""Object values: nfl.Index(value_dtype="object") against the object-valued
ordered maps, one run, the same keys and value objects for all.

Per-op get (idx[k] of present keys, in random order, each key a new int
object rather than the one the map holds; of the index built by
the inserts and of one bulk-loaded) and per-op insert
(idx[k] = v into an empty map, keys in random order) against SortedDict and
BTrees' object tree for the key dtype (LOBTree for int64, QOBTree for
uint64); the batch insert (insert_many) too; and the memory per entry of the
tree (excluding the value objects) against the int64-valued index; and the
batch get of all n keys in random order: nfl's get_many (one native call
filling an object array) against a Python loop of m[k] over the peers,
which have no batch read.  The
same per-op get and insert of an int64-valued nfl index (values 0..n-1, ints
rather than the byte strings) shows what object values themselves cost.
Each figure is the median of --repeat runs; the per-op repeats take the
peers in turn (one repeat of each, then the next), so a machine's drift
shows in all of them alike.

    python -m bench.objects --n 1000000 --repeat 5 [--key-dtype uint64]
"""
import statistics
import time

import numpy as np

from .timing import median_s


def peers(key_dtype):
    """name -> constructor of an empty object-valued ordered map (and of nfl with int64 values, for reference)."""
    import nfl
    from sortedcontainers import SortedDict

    out = {"nfl": lambda: nfl.Index(key_dtype, "object"), "SortedDict": SortedDict,
           "nfl-int64values": lambda: nfl.Index(key_dtype, "int64")}
    try:
        if key_dtype == "int64":
            from BTrees.LOBTree import LOBTree as tree
        else:
            from BTrees.QOBTree import QOBTree as tree
        out[tree.__name__] = tree
    except ImportError:  # BTrees is optional; the report says which peers ran
        pass
    return out


def measure(n=1_000_000, repeat=5, key_dtype="int64", probes=200_000, seed=1):
    """{figure: value} of one run (seconds per op as ns, bytes per entry)."""
    import nfl

    rng = np.random.default_rng(seed)
    keys = rng.choice(2**62, n, replace=False).astype(key_dtype)
    key_list = keys.tolist()
    values = [b"v%d" % i for i in range(n)]
    ints = list(range(n))
    # Fresh int objects, as keys a program computes or parses are (and as in
    # bench.perop and the YCSB runner): probing with the very objects the maps
    # hold lets dict (SortedDict's lookup) match by identity and skip loading
    # the stored key, a shortcut a lookup with its own key object never takes.
    probe = keys[rng.integers(0, n, probes)].tolist()
    batch_keys = keys[rng.permutation(n)]  # get_many: every key once, in random order
    batch_list = batch_keys.tolist()
    out = {}
    filled = {}
    times = {}  # (figure, name) -> seconds of each repeat; repeats interleave the peers

    def timed(figure, name, fn):
        t0 = time.perf_counter()
        fn()
        times.setdefault((figure, name), []).append(time.perf_counter() - t0)

    for _ in range(repeat):
        for name, make in peers(key_dtype).items():
            def insert(make=make, name=name, values=ints if name.endswith("int64values") else values):
                filled.pop(name, None)  # the last map goes before the next is built
                m = make()
                for k, v in zip(key_list, values):
                    m[k] = v
                filled[name] = m

            def get(name=name):
                m = filled[name]
                for k in probe:
                    m[k]
            def get_batch(name=name):
                m = filled[name]
                if name.startswith("nfl"):
                    m.get_many(batch_keys)
                else:  # no batch read: the Python loop a user would write
                    [m[k] for k in batch_list]
            timed("insert_ns", name, insert)
            timed("get_ns", name, get)
            timed("get_many_ns", name, get_batch)
    for (figure, name), secs in times.items():
        out[f"{figure}/{name}"] = statistics.median(secs) / (probes if figure == "get_ns" else n) * 1e9
    assert all(filled["nfl"][k] is v for k, v in zip(key_list[:1000], values))
    got, found = filled["nfl"].get_many(batch_keys[:1000])
    assert found.all() and all(g is filled["SortedDict"][k] for g, k in zip(got, batch_list[:1000]))
    obj_array = np.fromiter(values, dtype=object, count=n)

    def batch():
        nfl.Index(key_dtype, "object").insert_many(keys, obj_array)
    out["insert_many_ns/nfl"] = median_s(batch, repeat) / n * 1e9
    objects = nfl.Index.bulk_load(keys, obj_array, flow="off")

    def get_bulk():
        for k in probe:
            objects[k]
    out["get_ns/nfl-bulk_load"] = median_s(get_bulk, repeat) / probes * 1e9
    ints = nfl.Index.bulk_load(keys, np.arange(n, dtype=np.int64), flow="off")
    out["bytes_per_entry/nfl-object"] = objects.memory_usage() / n
    out["bytes_per_entry/nfl-int64"] = ints.memory_usage() / n
    out["bytes_per_entry/nfl-object-inserted"] = filled["nfl"].memory_usage() / n
    return out


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench.objects", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--key-dtype", choices=["int64", "uint64"], default="int64")
    a = p.parse_args(argv)
    out = measure(a.n, a.repeat, a.key_dtype)
    for name, value in out.items():
        print(f"{name:40s} {value:10.1f}")
    tree = "LOBTree" if a.key_dtype == "int64" else "QOBTree"
    for what, ours in (("get_ns", "nfl"), ("get_ns", "nfl-bulk_load"), ("get_ns", "nfl-int64values"),
                       ("get_many_ns", "nfl"), ("get_many_ns", "nfl-int64values"),
                       ("insert_ns", "nfl"), ("insert_ns", "nfl-int64values"), ("insert_ns", "insert_many_ns/nfl")):
        mine = out[ours if "/" in ours else f"{what}/{ours}"]
        for peer in ("SortedDict", tree):
            if f"{what}/{peer}" in out:
                print(f"{what} {peer}/{ours} = {out[f'{what}/{peer}'] / mine:.2f}x")
    print(f"memory object/int64 = {out['bytes_per_entry/nfl-object'] / out['bytes_per_entry/nfl-int64']:.3f}")


if __name__ == "__main__":
    main()
