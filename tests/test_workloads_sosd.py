"""SOSD key files: round trips for every key type, clear errors for damaged files, dedup with a count."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from workloads.sosd import dedup, read_keys, read_unique, write_keys

DTYPES = ["uint64", "int64", "float64"]


def _raw(path, count, payload: bytes):
    path.write_bytes(np.uint64(count).astype("<u8").tobytes() + payload)
    return path


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_round_trip_every_dtype(tmp_path_factory, dtype, data):
    elements = st.floats(allow_nan=False) if dtype == "float64" else None
    keys = data.draw(hnp.arrays(np.dtype(dtype), st.integers(0, 300), elements=elements))
    path = tmp_path_factory.mktemp("sosd") / f"keys_{dtype}"
    write_keys(path, keys)
    back = read_keys(path)
    assert back.dtype == np.dtype(dtype)
    assert back.tobytes() == keys.tobytes()
    assert path.stat().st_size == 8 + 8 * len(keys)


def test_file_layout_is_little_endian_count_then_keys(tmp_path):
    path = tmp_path / "k_uint64"
    write_keys(path, np.array([1, 2**64 - 1], dtype=np.uint64))
    assert path.read_bytes() == (2).to_bytes(8, "little") + (1).to_bytes(8, "little") + b"\xff" * 8


def test_dtype_argument_overrides_the_missing_suffix(tmp_path):
    path = _raw(tmp_path / "nosuffix.bin", 2, np.array([-5, 7], dtype="<i8").tobytes())
    with pytest.raises(ValueError, match="cannot tell the key type"):
        read_keys(path)
    assert read_keys(path, "int64").tolist() == [-5, 7]
    assert read_keys(path, np.int64).tolist() == [-5, 7]
    with pytest.raises(ValueError, match="unknown key type"):
        read_keys(path, "int16")


def test_uint32_sosd_files_are_widened(tmp_path):
    path = _raw(tmp_path / "books_3_uint32", 3, np.array([1, 5, 2**32 - 1], dtype="<u4").tobytes())
    keys = read_keys(path)
    assert keys.dtype == np.uint64 and keys.tolist() == [1, 5, 2**32 - 1]


@pytest.mark.parametrize("cut", [1, 7, 8, 9])
def test_truncated_file_is_a_clear_error(tmp_path, cut):
    path = tmp_path / "t_uint64"
    write_keys(path, np.arange(10, dtype=np.uint64))
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(ValueError, match=r"truncated SOSD file: the header declares 10 uint64 keys"):
        read_keys(path)


@pytest.mark.parametrize("size", [0, 3, 7])
def test_file_shorter_than_header(tmp_path, size):
    path = tmp_path / "h_int64"
    path.write_bytes(b"\x01" * size)
    with pytest.raises(ValueError, match="shorter than the 8-byte count header"):
        read_keys(path)


def test_mis_sized_file_is_a_clear_error(tmp_path):
    path = _raw(tmp_path / "m_float64", 2, np.arange(3, dtype="<f8").tobytes())
    with pytest.raises(ValueError, match=r"mis-sized SOSD file: the header declares 2 float64 keys \(24 bytes\)"):
        read_keys(path)
    # a count header so large it could only be garbage
    path = _raw(tmp_path / "g_uint64", 2**60, b"\0" * 16)
    with pytest.raises(ValueError, match="truncated"):
        read_keys(path)


def test_empty_file_with_zero_count(tmp_path):
    path = _raw(tmp_path / "e_uint64", 0, b"")
    assert read_keys(path).shape == (0,)


def test_write_refuses_a_name_that_contradicts_the_keys(tmp_path):
    with pytest.raises(ValueError, match="the name says uint64 but the keys are float64"):
        write_keys(tmp_path / "x_uint64", np.zeros(3))
    with pytest.raises(ValueError, match="1-D uint64, int64 or float64"):
        write_keys(tmp_path / "x", np.zeros(3, dtype=np.int32))


def test_dedup_counts_duplicates_like_real_sosd_files(tmp_path):
    # SOSD's books/fb files are sorted with repeated keys
    raw = np.array([1, 1, 2, 3, 3, 3, 9], dtype="<u8")
    path = _raw(tmp_path / "books_7_uint64", len(raw), raw.tobytes())
    keys, n_dup = read_unique(path)
    assert keys.tolist() == [1, 2, 3, 9] and n_dup == 3


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.int64, st.integers(0, 200), elements=st.integers(-50, 50)))
def test_dedup_is_sorted_unique_with_the_right_count(keys):
    unique, n_dup = dedup(keys)
    assert unique.tolist() == sorted(set(keys.tolist()))
    assert n_dup == len(keys) - len(unique)


def test_dedup_keeps_sorted_input_without_copying_and_rejects_nan():
    keys = np.arange(5, dtype=np.uint64)
    assert dedup(keys)[0] is keys
    with pytest.raises(ValueError, match="NaN"):
        dedup(np.array([1.0, np.nan]))
    unique, n_dup = dedup(np.array([0.0, -0.0, 1.0]))
    assert unique.tolist() == [0.0, 1.0] and n_dup == 1
