"""``bench/ingest.py`` runs end to end on a small table and ends with its JSON line.

The script itself checks that every path stored every row; these tests check that it runs, that
the JSON line carries what BENCHMARKS.md and the issue promise, and that the figures are
plausible. No speed is asserted here: speed targets live in the benchmark, not in tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from polyfarm.store.embedded import EmbeddedPostgres

from .scripts import run_script


def run_ingest(server: EmbeddedPostgres, *options: str) -> tuple[dict[str, Any], str]:
    return run_script(
        "ingest.py", "--dsn", server.dsn("postgres"), "--json", *options, timeout_s=110
    )


@pytest.mark.timeout(120)
def test_every_path_stores_every_row_and_reports_its_rate(
    embedded_server: EmbeddedPostgres,
) -> None:
    result, table = run_ingest(embedded_server, "--rows", "6000", "--batch", "2000")
    assert (result["rows"], result["baseline_rows"], result["batch"]) == (6000, 6000, 2000)
    for key in ("writer_rows_per_s", "executemany_rows_per_s", "orm_rows_per_s"):
        assert result[key] > 0, key
    assert result["warm_up_rows_per_s"] > 0
    assert result["writer_vs_orm"] == pytest.approx(
        result["writer_rows_per_s"] / result["orm_rows_per_s"], rel=0.05
    )
    assert "writer, 6,000 rows" in table
    assert "not counted" in table


@pytest.mark.timeout(120)
def test_baselines_on_fewer_rows_are_labelled_and_runs_repeat(
    embedded_server: EmbeddedPostgres,
) -> None:
    options = ("--rows", "4000", "--baseline-rows", "1000", "--runs", "2", "--no-warm-up")
    result, table = run_ingest(embedded_server, *options)
    assert result["baseline_rows"] == 1000
    assert result["warm_up_rows_per_s"] is None
    assert len(result["runs"]) == 2
    assert "(fewer: favours the baselines)" in table
    assert "median of the runs" in table


@pytest.mark.timeout(120)
def test_a_table_that_already_holds_a_day_is_said_and_counted_apart(
    embedded_server: EmbeddedPostgres,
) -> None:
    # 2,000 tokens, 10 minutes of the day before; the script checks the timed rows alone.
    options = ("--rows", "2000", "--history-rows", "20000", "--no-warm-up")
    result, table = run_ingest(embedded_server, *options)
    assert result["history_rows"] == 20000
    assert result["writer_rows_per_s"] > 0
    assert "holds 20,000 rows of the day before" in table
