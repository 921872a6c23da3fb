"""Object values on disk: snapshots (pickled section under the SHA-256),
pickle of an index, and the durable index's write-ahead log records.  Bytes
are never unpickled before their checksum is verified."""
import os
import pickle

import numpy as np
import pytest

import nfl
from nfl.storage import wal
from nfl.storage.errors import SnapshotError

UNPICKLED = []


def _tripped(tag):
    UNPICKLED.append(tag)
    return ("tripwire", tag)


class Tripwire:
    """A value whose unpickling is recorded."""

    def __init__(self, tag):
        self.tag = tag

    def __reduce__(self):
        return _tripped, (self.tag,)


VALUES = ["text", b"bytes", None, (1, "two", 3.0), {"k": [1, 2]}, 2**70, -5]


@pytest.mark.parametrize("dtype", ["uint64", "int64", "float64"])
def test_snapshot_round_trip(tmp_path, dtype):
    keys = np.arange(len(VALUES)).astype(dtype)
    idx = nfl.Index.bulk_load(keys, VALUES)
    path = tmp_path / "s.nfl"
    idx.save(path)
    back = nfl.Index.load(path)
    assert back.value_dtype == "object" and back == idx and list(back.values()) == VALUES
    clone = pickle.loads(pickle.dumps(idx))
    assert clone == idx and clone.value_dtype == "object"
    empty = nfl.Index(dtype, "object")
    empty.save(path)
    assert len(nfl.Index.load(path)) == 0 and nfl.Index.load(path).value_dtype == "object"


def test_unpicklable_value_refused_before_writing(tmp_path):
    path = tmp_path / "s.nfl"
    idx = nfl.Index.bulk_load(np.arange(3), ["a", "b", "c"])
    idx.save(path)
    before = path.read_bytes()
    idx[5] = lambda: None
    with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
        idx.save(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("where", ["keys", "values", "digest"])
def test_corrupted_snapshot_rejected_before_unpickling(tmp_path, where):
    path = tmp_path / "s.nfl"
    idx = nfl.Index.bulk_load(np.arange(4), [Tripwire(i) for i in range(4)])
    idx.save(path)
    data = bytearray(path.read_bytes())
    values_len = len(pickle.dumps([Tripwire(i) for i in range(4)], protocol=5))
    at = {"keys": len(data) - 32 - (values_len + 7) // 8 * 8 - 8,
          "values": len(data) - 40, "digest": len(data) - 1}[where]
    data[at] ^= 0x40
    path.write_bytes(bytes(data))
    UNPICKLED.clear()
    with pytest.raises(SnapshotError, match="checksum"):
        nfl.Index.load(path)
    assert UNPICKLED == []
    path.write_bytes(bytes(data[:-9]))  # truncated: rejected on its size
    with pytest.raises(SnapshotError):
        nfl.Index.load(path)
    assert UNPICKLED == []


def test_durable_object_values_survive_reopening(tmp_path):
    path = tmp_path / "d"
    with nfl.open(path, key_dtype="int64", value_dtype="object") as d:
        d[1] = ("a", 1)
        d[2] = b"x"
        d.put_many([3, 4], [None, {"k": [1]}])
        assert d.insert_many([4, 5], ["no", "five"]).tolist() == [False, True]
        d.update({6: "six"})
        assert d.pop(2) == b"x"
        assert d.setdefault(7, "s") == "s"
        expect = dict(d.items())
    with nfl.open(path) as d:
        assert d.value_dtype == "object" and dict(d.items()) == expect
        assert d.recovery.replayed == 7
        d.checkpoint()
        d[9] = [9]
        expect[9] = [9]
    with nfl.open(path) as d:
        assert dict(d.items()) == expect
        d.clear()
    with nfl.open(path) as d:
        assert len(d) == 0


def test_durable_unpicklable_value_changes_nothing(tmp_path):
    path = tmp_path / "d"
    with nfl.open(path, key_dtype="uint64", value_dtype="object") as d:
        d[1] = "one"
        size = os.path.getsize(path / "wal")
        for write in (lambda: d.__setitem__(2, lambda: 0), lambda: d.put_many([2, 3], ["ok", lambda: 0]),
                      lambda: d.insert(2, lambda: 0), lambda: d.update({2: lambda: 0})):
            with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
                write()
            assert os.path.getsize(path / "wal") == size and dict(d.items()) == {1: "one"}
        d[2] = "two"  # the store goes on
    with nfl.open(path) as d:
        assert dict(d.items()) == {1: "one", 2: "two"}


def test_damaged_log_record_not_unpickled(tmp_path):
    path = tmp_path / "d"
    with nfl.open(path, key_dtype="int64", value_dtype="object") as d:
        d[1] = Tripwire(1)
        d[2] = Tripwire(2)
    log = path / "wal"
    data = bytearray(log.read_bytes())
    data[-9] ^= 0x01  # inside the pickle of the last record: its CRC fails
    log.write_bytes(bytes(data))
    UNPICKLED.clear()
    with pytest.warns(nfl.RecoveryWarning if hasattr(nfl, "RecoveryWarning") else Warning):
        d = nfl.open(path)
    with d:
        assert list(d.keys()) == [1] and d[1] == ("tripwire", 1)
    assert UNPICKLED == [1]  # the damaged record was set aside, never unpickled


def test_wal_encodes_object_records():
    keys = np.array([1, 2], dtype=np.uint64)
    data = wal.encode(7, wal.UPSERT, keys, np.array(["a", ("b",)], dtype=object))
    assert len(data) % 8 == 0
    buf = np.frombuffer(wal._prefix() + data, dtype=np.uint8)
    record, end = wal._record_at(buf, wal.START)
    assert end == buf.size and record.op == wal.UPSERT and record.seq == 7
    assert record.values.tolist() == ["a", ("b",)]
