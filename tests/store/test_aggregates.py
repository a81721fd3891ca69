"""Candles and trade volume equal an independent aggregation done here in Python."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from polyfarm.settings import RetentionSettings
from polyfarm.store.maintenance import AGGREGATE_VIEWS, apply_retention, refresh_aggregates
from polyfarm.store.queries import CANDLE_VIEWS, candles, coverage, latest_prices, trades
from polyfarm.store.rows import PRICE_SNAPSHOTS, TRADES, PriceSnapshotRow, TradeRow, trade_key
from polyfarm.store.writer import BulkWriter

from ..conftest import Server
from .factories import token

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
WIDTHS = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}


def random_snapshots(rng: random.Random, tokens: list[str]) -> list[PriceSnapshotRow]:
    rows = []
    for tok in tokens:
        price = 0.5
        ts = START + timedelta(seconds=rng.randint(0, 50))
        while ts < START + timedelta(days=2):
            price = min(0.99, max(0.01, price + rng.gauss(0, 0.01)))
            rows.append(
                PriceSnapshotRow(
                    ts, tok, "1", round(price, 3), None, None, None, None, rng.uniform(0, 1e4), None
                )
            )
            ts += timedelta(seconds=rng.choice([15, 30, 60, 60, 60, 120, 600]))
    return rows


def bucket_of(ts: datetime, width: timedelta) -> datetime:
    # Buckets count from 2000-01-03 UTC (a Monday), as TimescaleDB's time_bucket does.
    origin = datetime(2000, 1, 3, tzinfo=UTC)
    return origin + ((ts - origin) // width) * width


def expected_candles(rows: list[PriceSnapshotRow], tok: str, width: timedelta) -> list[tuple]:
    groups: dict[datetime, list[PriceSnapshotRow]] = defaultdict(list)
    for row in rows:
        if row.token_id == tok:
            groups[bucket_of(row.ts, width)].append(row)
    result = []
    for bucket in sorted(groups):
        members = sorted(groups[bucket], key=lambda r: r.ts)
        prices = [m.price for m in members]
        result.append((bucket, prices[0], max(prices), min(prices), prices[-1], len(prices)))
    return result


async def refresh_all(conn: asyncpg.Connection, server: Server) -> None:
    if server.flavor == "plain":
        assert await refresh_aggregates(conn) == list(AGGREGATE_VIEWS)
        return
    for view in AGGREGATE_VIEWS:
        await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")


async def test_candles_equal_an_independent_aggregation(server: Server, pool: asyncpg.Pool) -> None:
    rng = random.Random(7)
    tokens = [token(1), token(2)]
    rows = random_snapshots(rng, tokens)
    writer = BulkWriter(pool, clock=lambda: START + timedelta(days=3))
    assert (await writer.write(PRICE_SNAPSHOTS, rows)).inserted == len(rows)
    async with pool.acquire() as conn:
        await refresh_all(conn, server)
        for interval, width in WIDTHS.items():
            assert interval in CANDLE_VIEWS
            for tok in tokens:
                got = await candles(conn, tok, interval, START, START + timedelta(days=3))
                want = expected_candles(rows, tok, width)
                assert len(got) == len(want), interval
                for candle, expected in zip(got, want, strict=True):
                    bucket, open_, high, low, close, samples = expected
                    assert candle.bucket == bucket
                    assert (candle.open, candle.high, candle.low, candle.close) == pytest.approx(
                        (open_, high, low, close)
                    ), (interval, bucket)
                    assert candle.samples == samples


async def test_trade_volume_matches_the_trades(server: Server, pool: asyncpg.Pool) -> None:
    rng = random.Random(3)
    tok = token(5)
    rows = []
    for i in range(500):
        ts = START + timedelta(seconds=rng.randint(0, 3 * 3600))
        price, size, side = (
            round(rng.uniform(0.1, 0.9), 2),
            round(rng.uniform(1, 500), 1),
            rng.choice(["BUY", "SELL"]),
        )
        key = trade_key(tok, int(ts.timestamp()), str(price), str(size), side, i)
        rows.append(TradeRow(ts, tok, "1", key, price, size, side, None, None, "ws", None, ts))
    writer = BulkWriter(pool, clock=lambda: START + timedelta(days=1))
    assert (await writer.write(TRADES, rows)).inserted == 500
    async with pool.acquire() as conn:
        await refresh_all(conn, server)
        got = await conn.fetch(
            "SELECT * FROM trade_volume_1h WHERE token_id=$1 ORDER BY bucket", tok
        )
        listed = await trades(conn, tok, START, START + timedelta(days=1))
    assert len(listed) == 500
    assert [t.ts for t in listed] == sorted(t.ts for t in listed)
    by_hour: dict[datetime, list[TradeRow]] = defaultdict(list)
    for row in rows:
        by_hour[bucket_of(row.ts, timedelta(hours=1))].append(row)
    assert [r["bucket"] for r in got] == sorted(by_hour)
    for record in got:
        members = by_hour[record["bucket"]]
        volume = sum(m.size for m in members)
        assert record["trades"] == len(members)
        assert record["volume"] == pytest.approx(volume)
        assert record["vwap"] == pytest.approx(sum(m.price * m.size for m in members) / volume)
        assert record["buy_volume"] == pytest.approx(
            sum(m.size for m in members if m.side == "BUY")
        )
        assert record["sell_count"] == sum(1 for m in members if m.side == "SELL")


async def test_latest_prices_and_coverage(pool: asyncpg.Pool) -> None:
    from polyfarm.store.dimensions import upsert_markets

    from .factories import market_record

    rows = [
        PriceSnapshotRow(
            START + timedelta(minutes=m),
            token(t),
            "100",
            0.1 * t + m / 1000,
            None,
            None,
            None,
            None,
            None,
            None,
        )
        for t in (1, 2)
        for m in range(0, 120, 1)
    ]
    async with pool.acquire() as conn:
        await upsert_markets(conn, [market_record("100", None)])
    await BulkWriter(pool, clock=lambda: START + timedelta(days=1)).write(PRICE_SNAPSHOTS, rows)
    async with pool.acquire() as conn:
        latest = await latest_prices(conn, [token(1), token(2), token(3)])
        hours = await coverage(conn, START, START + timedelta(hours=2))
    assert [(p.token_id, p.ts) for p in latest] == [
        (token(1), START + timedelta(minutes=119)),
        (token(2), START + timedelta(minutes=119)),
    ]
    assert latest[1].price == pytest.approx(0.2 + 0.119)
    assert [(h.hour, h.tier, h.markets, h.snapshots) for h in hours] == [
        (START, 1, 1, 120),
        (START + timedelta(hours=1), 1, 1, 120),
    ]


async def test_plain_retention_deletes_only_old_rows(server: Server, pool: asyncpg.Pool) -> None:
    if server.flavor != "plain":
        pytest.skip("on TimescaleDB retention is a background policy (see test_timescale)")
    now = START + timedelta(days=30)
    old = PriceSnapshotRow(START, token(1), "1", 0.5, None, None, None, None, None, None)
    new = old._replace(ts=now - timedelta(days=1))
    await BulkWriter(pool, clock=lambda: now).write(PRICE_SNAPSHOTS, [old, new])
    async with pool.acquire() as conn:
        deleted = await apply_retention(conn, RetentionSettings(raw_days=10), now)
        left = await conn.fetch("SELECT ts FROM price_snapshots")
    assert deleted["price_snapshots"] == 1
    assert [r["ts"] for r in left] == [new.ts]
