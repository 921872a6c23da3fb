"""The nfl command: train, analyze (with a plot), info, and clean errors."""
import numpy as np
import pytest

from nfl.cli import main, read_keys


def write_sosd(path, keys):
    with open(path, "wb") as f:
        np.array([keys.size], dtype="<u8").tofile(f)
        keys.astype(keys.dtype.newbyteorder("<")).tofile(f)
    return str(path)


@pytest.fixture
def key_file(tmp_path):
    rng = np.random.default_rng(0)
    keys = (rng.lognormal(0, 2, 30_000) * 1e9).astype(np.uint64)
    keys = np.concatenate([keys, keys[:10]])  # SOSD files may hold duplicates
    return write_sosd(tmp_path / "lognormal_30K_uint64", keys)


def test_train_then_analyze_with_plot(tmp_path, key_file, capsys):
    pytest.importorskip("torch")
    flow_path = str(tmp_path / "keys.flow")
    assert main(["train", key_file, "-o", flow_path, "--quiet", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "duplicates removed" in out and "saved to" in out
    png = tmp_path / "conflicts.png"
    assert main(["analyze", key_file, "--flow", flow_path, "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "raw keys" in out and "flow (" in out and "p99" in out and "lowered" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_trains_a_flow_when_none_is_given(key_file, capsys):
    pytest.importorskip("torch")
    assert main(["analyze", key_file, "--quiet"]) == 0
    assert "flow (" in capsys.readouterr().out


def test_float_keys_and_dtype_override(tmp_path, capsys):
    keys = np.sort(np.random.default_rng(1).uniform(-180, 180, 5000))
    path = write_sosd(tmp_path / "lon.bin", keys)
    assert main(["analyze", path, "--flow", "missing.flow"]) == 1  # no suffix, no --key-dtype
    assert "_float64" in capsys.readouterr().err
    got, dups = read_keys(path, "float64")
    assert np.array_equal(got, keys) and dups == 0


def test_bad_files_are_reported_not_raised(tmp_path, key_file, capsys):
    short = tmp_path / "short_uint64"
    short.write_bytes(open(key_file, "rb").read()[:-3])
    assert main(["analyze", str(short)]) == 1
    assert "header says" in capsys.readouterr().err
    assert main(["analyze", key_file, "--flow", str(tmp_path / "none.flow")]) == 1
    bad_flow = tmp_path / "bad.flow"
    bad_flow.write_bytes(b"not a flow")
    assert main(["analyze", key_file, "--flow", str(bad_flow)]) == 1
    assert "flow file" in capsys.readouterr().err


def test_info_prints_index_stats(tmp_path, key_file, capsys):
    import nfl

    keys, _ = read_keys(key_file)
    path = str(tmp_path / "index.nfl")
    nfl.Index.bulk_load(keys, flow="off").save(path)
    assert main(["info", path]) == 0
    out = capsys.readouterr().out
    assert "size" in out and str(keys.size) in out
