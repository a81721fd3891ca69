"""``bench/partition_reads.py`` runs end to end on a small history and ends with its JSON line.

No speed is asserted: the figures live in BENCHMARKS.md; this checks that the script runs, that
the history it builds spans the partitions asked for, and that the line carries its keys.
"""

from __future__ import annotations

import pytest

from polyfarm.store.embedded import EmbeddedPostgres

from .scripts import run_script


@pytest.mark.timeout(120)
def test_both_reads_are_measured_over_the_days_asked_for(
    embedded_server: EmbeddedPostgres,
) -> None:
    dsn = embedded_server.dsn("postgres")
    options = ("--dsn", dsn, "--json", "--tokens", "50", "--days", "12", "--runs", "2")
    result, _ = run_script("partition_reads.py", *options, timeout_s=110)
    assert set(result) == {
        "tokens",
        "partitions",
        "newest_row_us_per_token",
        "newest_row_us_per_token_with_default",
        "speedup",
    }
    assert result["tokens"] == 50
    # Twelve days of history, the writer's, then the day of START and three ahead.
    assert result["partitions"] == 12 + 4
    assert result["newest_row_us_per_token"] > 0
    assert result["newest_row_us_per_token_with_default"] > 0
