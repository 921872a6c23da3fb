"""Key sets: synthetic generators (unique, seeded), the bundled default, the real sets by name."""
import numpy as np
import pytest

from workloads import datasets
from workloads.sosd import write_keys

SHARED = datasets.data_dir()
needs_shared = pytest.mark.skipif(not (SHARED / "ts_git_commits_1M_uint64").is_file(),
                                  reason=f"the real key sets are not in {SHARED}")


@pytest.mark.parametrize("dist", list(datasets.DISTRIBUTIONS))
def test_synthetic_keys_are_unique_sorted_and_seeded(dist):
    keys = datasets.generate(dist, 20_000, seed=1)
    assert keys.dtype == np.uint64 and len(keys) == 20_000
    assert np.all(keys[1:] > keys[:-1])
    assert np.array_equal(keys, datasets.generate(dist, 20_000, seed=1))
    assert not np.array_equal(keys, datasets.generate(dist, 20_000, seed=2))


def test_lognormal_is_the_papers():
    keys = datasets.generate("lognormal", 50_000, seed=3).astype(float)
    logs = np.log(keys / 1e9)
    assert np.median(keys) == pytest.approx(1e9, rel=0.05)
    assert np.std(logs) == pytest.approx(2.0, rel=0.03)


def test_clustered_has_clusters_of_very_different_density():
    gaps = np.diff(datasets.generate("clustered", 50_000, seed=4)).astype(float)
    # most gaps are inside clusters, a few are the jumps between them; inside, densities differ widely
    assert np.quantile(gaps, 0.99) / np.quantile(gaps, 0.05) > 1e4
    assert np.max(gaps) / np.quantile(gaps, 0.99) > 1e6


def test_zipf_gaps_are_heavy_tailed():
    gaps = np.diff(datasets.generate("zipf-gaps", 50_000, seed=5)).astype(float)
    assert gaps.min() >= 1 and np.median(gaps) <= 2 and gaps.max() > 1_000 * np.median(gaps)


def test_zero_and_tiny_sets():
    assert len(datasets.generate("uniform", 0, 0)) == 0
    assert len(datasets.generate("zipf-gaps", 1, 0)) == 1


def test_default_is_bundled():
    keys = datasets.load("default")
    assert len(keys) == 200_000 and keys.dtype == np.uint64 and np.all(keys[1:] > keys[:-1])
    assert datasets.DEFAULT_FILE.stat().st_size < 2_000_000
    sample = datasets.load("default", n=1_000, seed=5)
    assert len(sample) == 1_000 and np.isin(sample, keys).all()


def test_synthetic_names_load_too():
    assert np.array_equal(datasets.load("lognormal", n=1_000, seed=1), datasets.generate("lognormal", 1_000, 1))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown key set 'books'.*default, uniform.*lon_gshhg_4M"):
        datasets.load("books")


def test_data_dir_override_and_duplicates(tmp_path, monkeypatch):
    write_keys(tmp_path / "mine_5_int64", np.array([-3, -3, 1, 2, 2], dtype=np.int64))
    monkeypatch.setenv("NFL_DATA_DIR", str(tmp_path))
    assert datasets.data_dir() == tmp_path
    keys, n_dup = datasets.load_counted("mine_5")
    assert keys.tolist() == [-3, 1, 2] and n_dup == 2
    assert datasets.load("mine_5_int64").tolist() == [-3, 1, 2]
    assert "mine_5" in datasets.known_names()
    with pytest.raises(FileNotFoundError, match="NFL_DATA_DIR"):
        datasets.load("osm_tzb_s2cells_4M")
    with pytest.raises(ValueError, match="asked for 10 keys but it has only 3"):
        datasets.load("mine_5", n=10)


def test_load_a_file_path(tmp_path):
    path = tmp_path / "f_float64"
    write_keys(path, np.array([0.5, 1.5]))
    assert datasets.load(str(path)).tolist() == [0.5, 1.5]


@needs_shared
@pytest.mark.parametrize("name, dtype", [("osm_tzb_s2cells_4M", np.uint64), ("ts_git_commits_1M", np.uint64),
                                         ("ipv4_geolite2_3M", np.uint64), ("lon_gshhg_4M", np.float64)])
def test_real_sets_by_name(name, dtype):
    keys = datasets.load(name, n=10_000, seed=1)
    assert keys.dtype == dtype and len(keys) == 10_000 and np.all(keys[1:] > keys[:-1])
    assert np.array_equal(keys, datasets.load(name, n=10_000, seed=1))


@needs_shared
def test_default_is_a_sample_of_the_commit_times():
    full = datasets.load("ts_git_commits_1M")
    assert np.array_equal(datasets.load("default"), datasets.load("ts_git_commits_1M", n=200_000, seed=0))
    assert len(full) == 1_041_985
