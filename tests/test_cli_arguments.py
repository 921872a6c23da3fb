"""The nfl command's numeric arguments: range-checked, a one-line error and exit status 2."""
import subprocess
import sys

import numpy as np
import pytest

from nfl.cli import main

BAD = [
    ["analyze", "K_uint64", "--amplification", "1e12"],
    ["analyze", "K_uint64", "--amplification", "0"],
    ["analyze", "K_uint64", "--amplification", "-1"],
    ["analyze", "K_uint64", "--amplification", "nan"],
    ["analyze", "K_uint64", "--amplification", "inf"],
    ["analyze", "K_uint64", "--amplification", "two"],
    ["analyze", "K_uint64", "--seed", "-1"],
    ["analyze", "K_uint64", "--seed", str(2**63)],
    ["train", "K_uint64", "-o", "F", "--epochs", "0"],
    ["train", "K_uint64", "-o", "F", "--epochs", "-3"],
    ["train", "K_uint64", "-o", "F", "--epochs", "1.5"],
    ["train", "K_uint64", "-o", "F", "--epochs", "100001"],
    ["train", "K_uint64", "-o", "F", "--sample", "0"],
    ["train", "K_uint64", "-o", "F", "--sample", "1.01"],
    ["train", "K_uint64", "-o", "F", "--sample", "-0.5"],
    ["train", "K_uint64", "-o", "F", "--seed", "x"],
    ["train", "K_uint64"],  # no -o
    ["frobnicate"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a[:1] + a[2:]) for a in BAD])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, capsys, argv):
    argv = [str(tmp_path / a) if a in ("K_uint64", "F") else a for a in argv]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nfl") and "error:" in err and "Traceback" not in err
    assert not (tmp_path / "F").exists()


def test_bad_argument_from_the_command_line(tmp_path):
    """As a user runs it: no traceback, no MemoryError, status 2."""
    keys = tmp_path / "k_uint64"
    with open(keys, "wb") as f:
        np.array([3, 1, 2, 3], dtype="<u8").tofile(f)
    done = subprocess.run([sys.executable, "-m", "nfl.cli", "analyze", str(keys), "--amplification", "1e12"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "out of range (0, 1000]" in done.stderr


def test_too_many_slots_for_the_keys_is_refused(tmp_path, capsys, monkeypatch):
    import nfl.cli

    keys = tmp_path / "k_uint64"
    with open(keys, "wb") as f:
        np.array([4, 1, 2, 3, 4], dtype="<u8").tofile(f)
    monkeypatch.setattr(nfl.cli, "_MAX_SLOTS", 100)  # 4 keys at amplification 1000: 4000 slots
    assert main(["analyze", str(keys), "--amplification", "1000", "--flow", "none.flow"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "4,000 slots; at most 100" in err


def test_good_arguments_in_range_run(tmp_path, capsys):
    keys = tmp_path / "k_uint64"
    with open(keys, "wb") as f:
        np.array([5, 1, 2, 3, 4, 9], dtype="<u8").tofile(f)
    missing = str(tmp_path / "none.flow")
    # in range: parsing passes; the run then fails on the missing flow file (exit 1, not 2)
    assert main(["analyze", str(keys), "--amplification", "1000", "--seed", str(2**63 - 1), "--flow", missing]) == 1
    assert main(["analyze", str(keys), "--amplification", "0.5", "--flow", missing]) == 1
