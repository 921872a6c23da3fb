"""The directory of a durable ShardedIndex: its manifest, its shards, and reconciling their ranges.

    path/cluster.json   key dtype, value dtype, sync, the flow file's name (or null)
    path/flow           the flow chosen at bulk load, when one was (nfl.Flow.save)
    path/shard-<n>/     one durable shard each (shard.py: nfl.open index + range.json)

Reopening a cluster whose actors are all gone (reconcile) reads every
shard's range.json.  A crash can leave a split or a merge half done; the
range files say how far it got, and every step before the table was
published kept the data of the old ranges, so the result is always the
ranges before or after the change:

    split of S into S, T   S: {"moving": {"hi": old hi, "to": T}}.  T has a
                           range at S's epoch: S keeps [lo, bound) (done).
                           T has none: S keeps [lo, old hi) (undone, T dropped).
    merge of B into A      B: {"into": A}.  A has a range at B's epoch: B is
                           dropped (done).  Else B keeps its range (undone).
    a shard with no range.json was never given a range: dropped.

Pure Python: no Ray here.
"""
import json
import os
import re

from nfl.storage.files import atomic_write

MANIFEST = "cluster.json"
FLOW_FILE = "flow"
_SHARD_DIR = re.compile(r"^shard-(\d+)$")


def shard_dir(path, number) -> str:
    return os.path.join(path, f"shard-{number}")


def write_manifest(path, key_dtype, value_dtype, sync, flow) -> None:
    """Creates path (FileExistsError if it holds a cluster already) with the manifest and the flow file."""
    os.makedirs(path, exist_ok=True)
    if os.path.exists(os.path.join(path, MANIFEST)) or list_shards(path):
        raise FileExistsError(f"{path} already holds a sharded index: reopen it with ShardedIndex.open")
    if flow is not None:
        flow.save(os.path.join(path, FLOW_FILE))
    text = json.dumps({"key_dtype": key_dtype, "value_dtype": value_dtype, "sync": sync,
                       "flow": None if flow is None else FLOW_FILE})
    atomic_write(os.path.join(path, MANIFEST), [text.encode()])


def read_manifest(path):
    """(key dtype, value dtype, sync, Flow or None) of the cluster in path; FileNotFoundError if none."""
    with open(os.path.join(path, MANIFEST)) as f:
        head = json.load(f)
    flow = None
    if head["flow"] is not None:
        from nfl.flow import Flow

        flow = Flow.load(os.path.join(path, head["flow"]))
    return head["key_dtype"], head["value_dtype"], head["sync"], flow


def list_shards(path) -> list:
    """The shard numbers with a directory under path, ascending."""
    found = (_SHARD_DIR.match(name) for name in os.listdir(path))
    return sorted(int(m.group(1)) for m in found if m and os.path.isdir(os.path.join(path, m.group(0))))


class ReconcileError(ValueError):
    """The shards' saved ranges do not tile the key space; no crash of nfl's protocol leaves that."""


def reconcile(saved: dict):
    """The ranges a reopened cluster serves, from its shards' range.json contents.

    saved: {shard name: its range.json dict, or None for none}.  Returns
    (kept, dropped): kept, [(name, lo, hi)] in key order, tiling the whole
    key space (first lo and last hi None); dropped, the names whose data is
    held elsewhere (or was never acknowledged).  Raises ReconcileError for
    ranges that overlap or leave a gap.
    """
    ranged = {name: s for name, s in saved.items() if s is not None}
    kept, dropped = [], sorted(name for name, s in saved.items() if s is None)

    def done(target, epoch):  # the other shard of the change has taken its range
        return target in ranged and ranged[target]["epoch"] == epoch

    for name, s in ranged.items():
        if "into" in s and done(s["into"], s["epoch"]):
            dropped.append(name)
            continue
        hi = s["hi"]
        moving = s.get("moving")
        if moving is not None and not done(moving["to"], s["epoch"]):
            hi = moving["hi"]
            if moving["to"] in ranged:
                raise ReconcileError(f"{moving['to']} has a range, but not the one {name}'s split gave it")
        kept.append((name, s["lo"], hi))
    kept.sort(key=lambda k: (k[1] is not None, k[1]))
    for (a, _, hi), (b, lo, _) in zip(kept, kept[1:]):
        if hi is None or lo is None or hi != lo:
            raise ReconcileError(f"shard ranges do not meet: {a} ends at {hi}, {b} starts at {lo}")
    if kept and (kept[0][1] is not None or kept[-1][2] is not None):
        raise ReconcileError(f"shard ranges do not cover every key: from {kept[0][1]} to {kept[-1][2]}")
    if not kept:
        raise ReconcileError("no shard has a range")
    return kept, dropped
