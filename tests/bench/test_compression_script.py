"""``bench/compression.py`` runs end to end on a small simulated day and ends with its JSON line.

It needs TimescaleDB (compression is what it measures): skipped, visibly, without
POLYFARM_TEST_DATABASE_URL. No size is asserted beyond plausibility: the figures live in
BENCHMARKS.md.
"""

from __future__ import annotations

import os

import pytest

from ..conftest import TIMESCALE_ENV
from .scripts import run_script

TABLES = {"price_points", "book_samples", "feature_samples", "book_changes", "trade_fills"}


@pytest.mark.timeout(300)
def test_every_table_gets_its_compressed_bytes_per_row_and_gb_per_day() -> None:
    dsn = os.environ.get(TIMESCALE_ENV)
    if not dsn:
        pytest.skip(f"TimescaleDB tests skipped: set {TIMESCALE_ENV} to a server with timescaledb")
    options = ("--tokens", "20", "--hours", "2", "--variant-tokens", "5", "--json")
    result, _ = run_script("compression.py", "--dsn", dsn, *options, timeout_s=280)
    assert set(result["tables"]) == TABLES
    for name, table in result["tables"].items():
        assert table["rows"] > 0, name
        assert table["bytes_per_row_compressed"] < table["bytes_per_row_raw"], name
        ratio = table["bytes_per_row_raw"] / table["bytes_per_row_compressed"]
        assert table["compression_ratio"] == pytest.approx(ratio, abs=0.06), name
        assert table["gb_per_day_compressed"] > 0, name
    total = sum(t["gb_per_day_compressed"] for t in result["tables"].values())
    assert result["gb_per_day_compressed_total"] == pytest.approx(total, abs=0.02)
    assert len(result["aggregates"]) == 6
    assert all(a["rows_per_batch"] for a in result["aggregates"].values())
    assert result["index_memory"]["total_index_mb"] > 0
    assert result["variants"]
