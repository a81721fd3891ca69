"""``bench/book_reads.py`` runs end to end on a few books and ends with its JSON line.

No speed is asserted: the figures live in BENCHMARKS.md; this checks that the script runs, that
both decodings read the same rows (the script exits non-zero otherwise) and that the line
carries its keys.
"""

from __future__ import annotations

import pytest

from polyfarm.store.embedded import EmbeddedPostgres

from .scripts import run_script


@pytest.mark.timeout(120)
def test_both_decodings_are_measured_on_the_same_rows(embedded_server: EmbeddedPostgres) -> None:
    dsn = embedded_server.dsn("postgres")
    options = ("--dsn", dsn, "--json", "--rows", "600", "--runs", "1")
    result, _ = run_script("book_reads.py", *options, timeout_s=110)
    assert set(result) == {
        "rows",
        "depths_left_to_view",
        "read_us_per_row",
        "read_us_per_row_before",
        "speedup",
    }
    assert result["rows"] == 600
    assert 0 < result["depths_left_to_view"] < 1
