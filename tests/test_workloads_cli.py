"""The ``python -m workloads`` command line, run in-process (and once as a real subprocess)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workloads.__main__ import main
from workloads.sosd import read_keys, write_keys
from workloads.stream import OpStream

REPO = Path(__file__).resolve().parent.parent


def test_keys_from_a_distribution(tmp_path, capsys):
    out = tmp_path / "lognormal_5K_uint64"
    assert main(["keys", "--dist", "lognormal", "--n", "5000", "--seed", "1", "-o", str(out)]) == 0
    assert len(read_keys(out)) == 5000
    assert "wrote 5,000 uint64 keys" in capsys.readouterr().out


def test_keys_from_a_dataset_with_duplicates(tmp_path, capsys):
    src = tmp_path / "dups_uint64"
    write_keys(src, np.array([1, 1, 2, 3, 3], dtype=np.uint64))
    out = tmp_path / "sample_uint64"
    assert main(["keys", "--dataset", str(src), "--n", "2", "--seed", "0", "-o", str(out)]) == 0
    assert len(read_keys(out)) == 2
    assert "removed 2 duplicate keys" in capsys.readouterr().out


def test_ycsb_ops_with_overrides(tmp_path, capsys):
    keys = tmp_path / "k_uint64"
    write_keys(keys, np.arange(0, 30_000, 3, dtype=np.uint64))
    out = tmp_path / "s.npz"
    args = ["ops", "--workload", str(REPO / "workloads/ycsb/workloade"), "--keys", str(keys),
            "-p", "operationcount=2000", "-p", "recordcount=5000", "-p", "maxscanlength=10",
            "--seed", "1", "-o", str(out)]
    assert main(args) == 0
    s = OpStream.load(out)
    assert len(s) == 2000 and len(s.load_keys) == 5000 and s.scan_len.max() <= 10
    text = capsys.readouterr().out
    assert "generated 2,000 ops" in text and "SCAN" in text
    first = out.read_bytes()
    assert main(args) == 0 and out.read_bytes() == first


def test_paper_ops_and_info(tmp_path, capsys):
    keys = tmp_path / "k_int64"
    write_keys(keys, np.arange(-5_000, 5_000, dtype=np.int64))
    out = tmp_path / "p.npz"
    assert main(["ops", "--workload", "paper-R80", "--keys", str(keys), "--ops", "1000", "--seed", "2",
                 "-o", str(out)]) == 0
    assert OpStream.load(out).counts()["READ"] == 800
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "paper-R80" in capsys.readouterr().out
    assert main(["info", str(keys)]) == 0
    assert "10,000 int64 keys, 0 duplicates" in capsys.readouterr().out


def test_errors_are_reported_not_raised(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.write_text("# fine\nreadproportion=half\n")
    assert main(["ops", "--workload", str(bad), "--keys", "default", "--seed", "1", "-o", str(tmp_path / "x.npz")]) == 2
    assert f"{bad}, line 2: readproportion=half" in capsys.readouterr().err
    short = tmp_path / "short_uint64"
    short.write_bytes(b"\x05" + b"\0" * 7 + b"\1" * 12)
    assert main(["info", str(short)]) == 2
    assert "truncated SOSD file" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    out = tmp_path / "u_uint64"
    run = subprocess.run([sys.executable, "-m", "workloads", "keys", "--dist", "uniform", "--n", "100",
                          "-o", str(out)], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert len(read_keys(out)) == 100


@pytest.mark.skipif(not (REPO.parent / "shared" / "data" / "osm_tzb_s2cells_4M_uint64").is_file(),
                    reason="the real key sets are not in ../shared/data")
def test_keys_from_a_real_set(tmp_path):
    out = tmp_path / "osm_1K_uint64"
    assert main(["keys", "--dataset", "osm_tzb_s2cells_4M", "--n", "1000", "--seed", "1", "-o", str(out)]) == 0
    assert len(read_keys(out)) == 1000
