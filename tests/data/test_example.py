"""``examples/research.py`` runs as a user would run it, on a simulated month of two tokens."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from polyfarm.store.rows import FEATURE_COLUMNS, MARKET_FEATURES, PRICE_SNAPSHOTS
from polyfarm.store.writer import BulkWriter

from ..store.factories import feature_row, price_row, token

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "research.py"
MARCH = datetime(2026, 3, 1, tzinfo=UTC)
RETURN_1H = FEATURE_COLUMNS.index("return_1h")


async def a_month(pool: asyncpg.Pool) -> None:
    """Two tokens, a price every 10 minutes and features every hour, random walks."""
    rng = random.Random(5)
    prices, features = [], []
    for t in (1, 2):
        price = 0.5
        for step in range(31 * 144):
            price = min(0.99, max(0.01, round(price + rng.choice((-0.01, 0, 0.01)), 2)))
            at = MARCH + step * timedelta(minutes=10)
            prices.append(price_row(0, token(t))._replace(ts=at, price=price))
            if step % 6 == 0:
                row = feature_row(0, token(t))
                values = list(row.values)
                values[RETURN_1H] = round(rng.uniform(-0.1, 0.1), 4)
                features.append(row._replace(ts=at, values=tuple(values)))
    writer = BulkWriter(pool, clock=lambda: MARCH + timedelta(days=40))
    await writer.write(PRICE_SNAPSHOTS, prices)
    await writer.write(MARKET_FEATURES, features)


@pytest.mark.timeout(180)
async def test_the_example_draws_a_month_and_builds_a_training_set(
    pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    await a_month(pool)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env.update(POLYFARM_DATABASE_URL=db_dsn, POLYFARM_LAKE__URL=str(tmp_path / "lake"))
    chart = tmp_path / "candles.png"
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(SCRIPT), "--token", token(1), "--token", token(2),
         "--out", str(chart)],
        capture_output=True, text=True, env=env, timeout=170, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "candles: 1488 hourly bars of 2 tokens" in done.stdout
    # Hourly feature rows of March whose next-hour price is known: all but each token's last.
    assert "training set: 1486 rows" in done.stdout
    assert chart.stat().st_size > 10_000
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
