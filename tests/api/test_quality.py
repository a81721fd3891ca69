"""Coverage, gaps and stale markets on a few hand-made rows, with hand-computed answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from polyfarm.api.queries.quality import cadences
from polyfarm.markets.book_stats import book_stats
from polyfarm.settings import Settings
from polyfarm.store.rows import (
    FEATURE_COLUMNS,
    MARKET_FEATURES,
    ORDERBOOK_SNAPSHOTS,
    PRICE_SNAPSHOTS,
    FeatureRow,
    OrderBookSnapshotRow,
    PriceSnapshotRow,
)
from polyfarm.store.writer import BulkWriter

from .conftest import ClientFactory

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


async def _market(
    pool: asyncpg.Pool, market_id: str, tier: int | None, closed_time: datetime | None = None
) -> str:
    await pool.execute(
        "INSERT INTO markets (market_id, condition_id, question, tier, closed, closed_time) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        market_id,
        f"0xc{market_id}",
        f"Question {market_id}?",
        tier,
        closed_time is not None,
        closed_time,
    )
    token = f"tok{market_id}"
    await pool.execute(
        "INSERT INTO tokens (token_id, market_id, condition_id, outcome, outcome_index) "
        "VALUES ($1, $2, $3, 'Yes', 0)",
        token,
        market_id,
        f"0xc{market_id}",
    )
    return token


async def _snapshots(pool: asyncpg.Pool, token: str, market_id: str, minutes: list[int]) -> None:
    rows = [
        PriceSnapshotRow(NOON + timedelta(minutes=m), token, market_id, 0.5, *[None] * 6)
        for m in minutes
    ]
    result = await BulkWriter(pool, clock=lambda: NOON + timedelta(hours=1)).write(
        PRICE_SNAPSHOTS, rows
    )
    assert result.inserted == len(rows)


@pytest.fixture
async def rows(pool: asyncpg.Pool, db_dsn: str) -> str:
    """m1: T2, snapshots 12:00-12:09 without 12:05. m2: closed at 12:04:10, snapshots until
    12:06 (the collector learnt of the close late). m3: open, never stored. Written as the
    owner; the DSN returned is read by the API as polyfarm_reader."""
    t1 = await _market(pool, "1", 2)
    await _snapshots(pool, t1, "1", [m for m in range(10) if m != 5])
    t2 = await _market(pool, "2", None, NOON + timedelta(minutes=4, seconds=10))
    await _snapshots(pool, t2, "2", list(range(7)))
    await _market(pool, "3", 3)
    await pool.execute(
        "INSERT INTO feed_gaps (stream, token_id, market_id, gap_start, gap_end, reason, repaired)"
        " VALUES ('ws_trades', $1, '1', $2, $3, 'socket dropped', false),"
        " ('ws_book', $1, '1', $4, $5, 'stall', true)",
        t1,
        NOON + timedelta(minutes=3),
        NOON + timedelta(minutes=4),
        NOON + timedelta(minutes=6),
        NOON + timedelta(minutes=6, seconds=30),
    )
    return db_dsn


async def test_coverage_counts_cadence_slots(rows: str, make_client: ClientFactory) -> None:
    now = NOON + timedelta(minutes=10, seconds=30)
    async with make_client(rows, clock=lambda: now) as client:
        body = (await client.get("/api/data-quality/coverage", params={"hours": 2})).json()
    assert body["start"] == "2026-03-02T11:00:00Z"
    tiers = {t["tier"]: t for t in body["tiers"]}
    # m1: slots 12:00 ... 12:09 (12:10 is less than one cadence old), 12:05 missing.
    assert tiers[2] == {
        "tier": 2,
        "markets": 1,
        "expected": 10,
        "actual": 9,
        "unchanged": 0,  # price snapshots are never skipped
        "missing": 1,
        "coverage_pct": 90.0,
    }
    # m2: expected until its last snapshot plus one cadence, 12:00 ... 12:06.
    assert tiers[None]["expected"] == 7
    assert tiers[None]["actual"] == 7
    assert 3 not in tiers, "a market never stored has nothing expected"
    assert [(c["hour"], c["tier"]) for c in body["hours"]] == [
        ("2026-03-02T12:00:00Z", None),
        ("2026-03-02T12:00:00Z", 2),
    ]


def test_order_book_cadences_follow_the_tiers() -> None:
    assert cadences(Settings(), "orderbooks") == [300.0, 300.0, 300.0, 60.0, 30.0, 15.0]
    assert cadences(Settings(), "prices") == [60.0] * 6


async def test_gaps_and_stale_markets(rows: str, make_client: ClientFactory) -> None:
    soon = NOON + timedelta(minutes=11)
    async with make_client(rows, clock=lambda: soon) as client:
        body = (await client.get("/api/data-quality/gaps")).json()
    assert [g["stream"] for g in body["gaps"]] == ["ws_book", "ws_trades"]  # newest first
    dropped = body["gaps"][1]
    assert dropped["question"] == "Question 1?"
    assert dropped["duration_s"] == 60.0
    assert body["gaps_open"] == 1
    assert body["gaps_total"] == 2
    assert body["summary"] == [
        {"stream": "ws_trades", "reason": "socket dropped", "gaps": 1, "open": 1, "seconds": 60.0},
        {"stream": "ws_book", "reason": "stall", "gaps": 1, "open": 0, "seconds": 30.0},
    ]
    # m1's last snapshot is 2 minutes old (< 240 s); m3 was never stored.
    assert [(m["market_id"], m["last_snapshot_at"]) for m in body["stale_markets"]] == [("3", None)]
    later = NOON + timedelta(minutes=20)
    async with make_client(rows, clock=lambda: later) as client:
        body = (await client.get("/api/data-quality/gaps")).json()
    assert [m["market_id"] for m in body["stale_markets"]] == ["3", "1"]
    assert body["stale_markets"][1]["age_s"] == 11 * 60
    assert body["stale_total"] == 2


async def _books(pool: asyncpg.Pool, token: str, market_id: str, minutes: list[int]) -> None:
    """Empty stream books, written as the daemon writes them (the table is a view): no best
    prices, no levels, depths of 0."""
    stats = book_stats([], [], 5.0)
    empty = (None, None, None, None, stats.bid_depth_usd, stats.ask_depth_usd, 0, 0)
    empty += (*stats.bid_depth, *stats.ask_depth, stats.imbalance) + (None,) * 6
    rows = [
        OrderBookSnapshotRow(
            NOON + timedelta(minutes=m), token, market_id, "ws", "[]", "[]", *empty
        )
        for m in minutes
    ]
    result = await BulkWriter(pool, clock=lambda: NOON + timedelta(hours=1)).write(
        ORDERBOOK_SNAPSHOTS, rows
    )
    assert result.inserted == len(rows)


async def _book_cycles(pool: asyncpg.Pool, start: datetime, end: datetime) -> None:
    """Successful REST book cycles every 15 s: the daemon ran."""
    count = int((end - start).total_seconds() // 15)
    await pool.executemany(
        "INSERT INTO task_runs (task_name, started_at, completed_at, status) "
        "VALUES ('orderbooks', $1, $1, 'success')",
        [(start + timedelta(seconds=15 * i),) for i in range(count)],
    )


@pytest.fixture
async def books(pool: asyncpg.Pool, db_dsn: str) -> str:
    """Two T2 markets (60 s book cadence), books stored at 12:00 and 12:06 only; the daemon ran
    from 11:50 on. m5's stream lost 12:02-12:03 (a feed gap of its market)."""
    for market in ("4", "5"):
        token = await _market(pool, market, 2)
        await _books(pool, token, market, [0, 6])
    await _book_cycles(pool, NOON - timedelta(minutes=10), NOON + timedelta(minutes=11))
    await pool.execute(
        "INSERT INTO feed_gaps (stream, market_id, gap_start, gap_end, reason) "
        "VALUES ('ws_trades', '5', $1, $2, 'socket dropped')",
        NOON + timedelta(minutes=2),
        NOON + timedelta(minutes=3),
    )
    return db_dsn


async def test_book_slots_without_a_row_are_unchanged_while_covered(
    books: str, pool: asyncpg.Pool, make_client: ClientFactory
) -> None:
    now = NOON + timedelta(minutes=10, seconds=30)
    query = {"stream": "orderbooks", "hours": 1}
    async with make_client(books, clock=lambda: now) as client:
        body = (await client.get("/api/data-quality/coverage", params=query)).json()
    # Slots 12:00 ... 12:09 of each token; rows at 12:00 and 12:06. m4: the other eight are
    # unchanged. m5: 12:01 ... 12:05 fall in a silence its feed gap overlaps, so missing.
    [tier] = body["tiers"]
    assert (tier["expected"], tier["actual"], tier["unchanged"], tier["missing"]) == (20, 4, 11, 5)
    assert tier["coverage_pct"] == 75.0

    # A keyframe window ends at 12:05: no row after it until 12:06 would be a hole.
    async with make_client(books, clock=lambda: now, unchanged={"keyframe_s": 300.0}) as client:
        body = (await client.get("/api/data-quality/coverage", params=query)).json()
    assert (body["tiers"][0]["unchanged"], body["tiers"][0]["missing"]) == (4 + 0 + 3 + 3, 6)

    async with make_client(books, clock=lambda: now, unchanged={"skip": False}) as client:
        body = (await client.get("/api/data-quality/coverage", params=query)).json()
    assert (body["tiers"][0]["unchanged"], body["tiers"][0]["missing"]) == (0, 16)

    # The daemon stopped at 12:07: the slots after it are missing too.
    await pool.execute("DELETE FROM task_runs WHERE started_at > $1", NOON + timedelta(minutes=7))
    async with make_client(books, clock=lambda: now) as client:
        body = (await client.get("/api/data-quality/coverage", params=query)).json()
    assert (body["tiers"][0]["unchanged"], body["tiers"][0]["missing"]) == (5, 11)


async def test_market_detail_forward_fills_the_latest_book_and_features(
    books: str, pool: asyncpg.Pool, make_client: ClientFactory
) -> None:
    """Skipped slots leave the latest row standing: the market page shows the book stored at
    12:06 and the features stored at 12:00 at 12:40, with the time they were stored."""
    # The price of a row without a book is its last trade price (the view derives it).
    values = tuple(0.5 if n in ("price", "last_trade_price") else None for n in FEATURE_COLUMNS)
    result = await BulkWriter(pool, clock=lambda: NOON + timedelta(hours=1)).write(
        MARKET_FEATURES, [FeatureRow(NOON, "tok4", "4", 2, values)]
    )
    assert result.inserted == 1
    later = NOON + timedelta(minutes=40)
    async with make_client(books, clock=lambda: later) as client:
        body = (await client.get("/api/markets/4")).json()
    assert body["book"]["ts"] == "2026-03-02T12:06:00Z"
    assert body["features_at"] == "2026-03-02T12:00:00Z"
    assert body["features"]["price"] == 0.5
