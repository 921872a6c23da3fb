"""bench.layout: callgrind counts per lookup, parsed into the table it prints."""
import shutil

import pytest

from bench import layout

pytestmark = pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")


@pytest.mark.slow
def test_layout_table_counts_misses(capsys):
    layout.main(["--n", "4000", "--lookups", "2000", "--ll", "16384"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert len(rows) == 6
    for row in rows:
        ir, ll_miss = float(row[-9]), float(row[-6])
        parts = [float(x) for x in row[-5:]]
        assert ir > 20 and ll_miss > 0
        assert sum(parts) <= ll_miss + 1e-9  # the split never invents misses
    no_prefetch, prefetch = rows[1], rows[0]
    assert float(no_prefetch[-6]) == pytest.approx(float(prefetch[-6]), rel=0.2)
