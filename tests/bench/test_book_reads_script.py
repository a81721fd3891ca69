"""``bench/book_reads.py`` runs end to end on a few books and ends with its JSON line.

No speed is asserted: the figures live in BENCHMARKS.md; this checks that the script runs, that
both decodings read the same rows (the script exits non-zero otherwise) and that the line
carries its keys.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from polyfarm.store.embedded import EmbeddedPostgres

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "book_reads.py"


@pytest.mark.timeout(120)
def test_both_decodings_are_measured_on_the_same_rows(embedded_server: EmbeddedPostgres) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dsn", embedded_server.dsn("postgres"), "--json",
         "--rows", "600", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == {
        "rows",
        "depths_left_to_view",
        "read_us_per_row",
        "read_us_per_row_before",
        "speedup",
    }
    assert result["rows"] == 600
    assert 0 < result["depths_left_to_view"] < 1
