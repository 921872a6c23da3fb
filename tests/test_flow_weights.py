"""The weights file: round trip, and a clear ValueError for every way a file can be unusable."""
import os
import struct

import numpy as np
import pytest

from nfl.flow import Flow, FlowFileError, layout, weights


@pytest.fixture
def flow():
    rng = np.random.default_rng(0)
    knots = np.concatenate([[0.0], np.sort(rng.random(99)), [1.0]])
    params = layout.pack(layout.Spline("log", 2.0**-64, 0.5, knots, rng.exponential(1.0, 100)))
    return Flow(params, {"trained_on": 123, "note": "test"})


def test_round_trip(tmp_path, flow):
    path = tmp_path / "keys.flow"
    flow.save(path)
    back = Flow.load(path)
    assert np.array_equal(back.params(), flow.params())
    assert back.meta == flow.meta and back.family == "spline" and back.feature == "log"
    x = np.random.default_rng(1).lognormal(0, 2, 1000) * 1e9
    assert np.array_equal(back.transform(x), flow.transform(x))
    assert [p.name for p in tmp_path.iterdir()] == ["keys.flow"]  # no temporary left behind


def test_save_replaces_atomically(tmp_path, flow):
    path = tmp_path / "f.flow"
    path.write_bytes(b"old contents")
    flow.save(str(path))
    assert Flow.load(str(path)).bins == flow.bins


def _file(tmp_path, flow, mutate):
    data = bytearray(weights.dumps(flow.params(), flow.meta))
    data = mutate(data)
    path = tmp_path / "bad.flow"
    path.write_bytes(bytes(data))
    return path


def _rechecksum(data):
    import hashlib

    body = bytes(data[:-32])
    return bytearray(body + hashlib.sha256(body).digest())


def _set_version(data):
    data[8:12] = struct.pack("<I", 99)
    return _rechecksum(data)


def _bad_params(data):
    # a valid checksum over a header that claims one parameter too many
    head_len = struct.unpack_from("<I", data, 12)[0]
    header = bytes(data[16:16 + head_len]).replace(b'"n_params": ', b'"n_params": 1')
    body = data[:12] + struct.pack("<I", len(header)) + header + data[16 + head_len:-32]
    return _rechecksum(body + bytes(32))


def _nan_density(data):
    data[-40:-32] = struct.pack("<d", float("nan"))
    return _rechecksum(data)


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d[:0], "truncated"),
    (lambda d: d[:20], "truncated"),
    (lambda d: d[:-1], "checksum"),
    (lambda d: d[:len(d) // 2], "checksum"),
    (lambda d: bytearray(b"XXXXXXXX") + d[8:], "magic"),
    (_set_version, "version"),
    (lambda d: d[:100] + bytearray([d[100] ^ 0xFF]) + d[101:], "checksum"),
    (lambda d: d[:-33] + bytearray([d[-33] ^ 1]) + d[-32:], "checksum"),
    (_bad_params, "malformed|length"),
    (_nan_density, "malformed"),
], ids=["empty", "short", "last byte", "half", "magic", "version", "header byte", "param byte", "lengths", "nan"])
def test_unusable_files_raise_a_value_error(tmp_path, flow, mutate, message):
    path = _file(tmp_path, flow, mutate)
    with pytest.raises(FlowFileError, match=message):
        Flow.load(path)
    assert issubclass(FlowFileError, ValueError)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        Flow.load(os.path.join(tmp_path, "nope.flow"))


def test_pickle_round_trip(flow):
    import pickle

    back = pickle.loads(pickle.dumps(flow))
    assert np.array_equal(back.params(), flow.params()) and back.meta == flow.meta
