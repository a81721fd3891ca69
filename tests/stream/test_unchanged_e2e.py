"""The stream's cadence writer skips rows equal to the token's previous one: a still venue
gets one row per token and keyframe window, a moving one a row at every change, and a restart
writes every token again."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
import pytest

from polyfarm.markets.snapshots import book_digest
from polyfarm.sim import Simulator
from polyfarm.store.rows import OrderBookSnapshotRow

from ..conftest import Server
from ..sim.support import make_config
from .harness import advance, settle, stream_settings, streaming

KEYFRAME_S = 600.0
PER_WINDOW = """
SELECT token_id, count(*) AS rows, count(DISTINCT floor(extract(epoch FROM ts) / $1)) AS windows
FROM {table} GROUP BY token_id
"""
# Two rows of a token in one keyframe window with the same content (ignoring the slot, the
# venue's timestamp and hash): the second should not have been written.
REPEATS = """
SELECT count(*) FROM (
    SELECT ts, bids, asks, best_bid, best_ask, bid_depth_usd, ask_depth_usd, bid_levels,
           ask_levels, bid_depth_50, ask_depth_50, bid_wall_size, ask_wall_size,
           lag(bids) OVER w AS p_bids, lag(asks) OVER w AS p_asks,
           lag(bid_depth_usd) OVER w AS p_bid_usd, lag(ask_depth_usd) OVER w AS p_ask_usd,
           lag(bid_levels) OVER w AS p_bid_levels, lag(ask_levels) OVER w AS p_ask_levels,
           lag(ts) OVER w AS p_ts
    FROM orderbook_snapshots WHERE source = 'ws'
    WINDOW w AS (PARTITION BY token_id ORDER BY ts)
) r
WHERE p_ts IS NOT NULL
  AND floor(extract(epoch FROM ts) / $1) = floor(extract(epoch FROM p_ts) / $1)
  AND bids = p_bids AND asks = p_asks AND bid_depth_usd = p_bid_usd
  AND ask_depth_usd = p_ask_usd AND bid_levels = p_bid_levels AND ask_levels = p_ask_levels
"""


CLOCKED = {
    "ts",
    "seconds_since_trade",
    "time_since_whale_s",
    "hours_to_close",
    "hours_since_open",
    "day_of_week",
    "hour_of_day",
}


async def feature_repeats(pool: asyncpg.Pool) -> int:
    """Feature rows equal to the token's previous one in its keyframe window, but for the
    features that move with the clock alone."""
    rows = await pool.fetch("SELECT * FROM market_features ORDER BY token_id, ts")
    repeats = 0
    for a, b in itertools.pairwise(rows):
        same_window = a["ts"].timestamp() // KEYFRAME_S == b["ts"].timestamp() // KEYFRAME_S
        if a["token_id"] == b["token_id"] and same_window:
            then, now = dict(a), dict(b)
            repeats += all(then[k] == now[k] for k in then if k not in CLOCKED)
    return repeats


def at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def stored_row(record: asyncpg.Record) -> OrderBookSnapshotRow:
    """A stored snapshot as the writer built it (levels back to JSON text)."""
    values = dict(record)
    for side in ("bids", "asks"):
        # The view decodes sizes as numbers (525, not 525.0): the same values as floats.
        values[side] = orjson.dumps([(float(p), float(q)) for p, q in values[side]]).decode()
    return OrderBookSnapshotRow(**{f: values[f] for f in OrderBookSnapshotRow._fields})


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server


async def per_window(pool: asyncpg.Pool, table: str) -> list[asyncpg.Record]:
    return await pool.fetch(PER_WINDOW.replace("{table}", table), KEYFRAME_S)


@pytest.mark.timeout(180)
async def test_a_still_book_is_written_once_per_keyframe_window_and_after_a_restart(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    config = make_config(
        markets=20, seed=3, quote_rate=0.0, trade_rate=0.0, new_markets_per_hour=0.0
    )
    async with Simulator(config) as sim:
        settings = stream_settings(sim, tmp_path, top={"unchanged": {"keyframe_s": KEYFRAME_S}})
        async with streaming(sim, pool, settings) as s:
            await advance(sim, 40 * 60, 160, pause_s=0.02)
            stats = s.run.cadence.stats
        books = await per_window(pool, "orderbook_snapshots")
        features = await per_window(pool, "market_features")
        assert books
        assert features
        assert all(r["rows"] == r["windows"] for r in books), [dict(r) for r in books]
        # Feature history fills in during the first hour (returns, volatility): a real change.
        assert await feature_repeats(pool) == 0
        assert sum(r["rows"] for r in features) < 2 * sum(r["windows"] for r in features)
        assert stats.unchanged_book_rows > 0
        assert stats.unchanged_feature_rows > 0

        # Far-from-close books (T0, T1) have a 5-minute slot, on time within a minute even at
        # this pace: the first one after the restart is written for every such token, whether
        # or not the keyframe window changed.
        async with streaming(sim, pool, settings) as s:
            boundary = (sim.clock.now() // 300 + 1) * 300
            await advance(sim, boundary - 2 - sim.clock.now(), 20, pause_s=0.05)
            # The slot is taken here, on time, rather than by the writer's own once-a-second
            # tick: on a loaded machine that tick can come after the slot's lateness limit.
            sim.clock.advance(boundary + 1 - sim.clock.now())
            usable = {t for t, b in s.run.books.items() if b.usable}
            await s.run.cadence.tick(at(boundary + 1))
        after = await pool.fetch(
            "SELECT token_id FROM orderbook_snapshots WHERE ts = to_timestamp($1)", boundary
        )
        far = await pool.fetch(
            "SELECT token_id FROM tokens JOIN markets USING (market_id) WHERE tier IN (0, 1)"
        )
        served = usable & {r["token_id"] for r in far}
        assert served
        assert served <= {r["token_id"] for r in after}, "a restart writes every token again"


@pytest.mark.timeout(180)
async def test_a_moving_book_is_written_at_every_change_and_never_twice_the_same(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with Simulator(make_config(markets=30, seed=5)) as sim:
        settings = stream_settings(sim, tmp_path, top={"unchanged": {"keyframe_s": KEYFRAME_S}})
        async with streaming(sim, pool, settings) as s:
            await advance(sim, 20 * 60, 200, pause_s=0.02)
            await settle(sim, s.run)
            # A slot of every book in the middle of a keyframe window, after a few minutes
            # of quotes; what the live books hold when the cadence writer takes its rows (no
            # await in between, so no frame can change them meanwhile).
            slot = ((sim.clock.now() + 240) // KEYFRAME_S + 1) * KEYFRAME_S + 300
            await advance(sim, slot - 2 - sim.clock.now(), 40, pause_s=0.05)
            await asyncio.sleep(0.5)
            sim.clock.advance(slot + 1 - sim.clock.now())
            live = {
                token: book_digest(s.run.cadence.book_row(at(slot), book, market))
                for token, book in s.run.books.items()
                if book.usable
                and (market := s.collection.catalog.market_of(token)) is not None
                and not market.closed
            }
            await s.run.cadence.tick(at(slot + 1))
            # A minute later with no simulated time in between, so no quote can have moved
            # the books: the 15 s to 60 s books are due again and are all unchanged. (The
            # quiet books found during the run are too few to rely on when a loaded machine
            # makes slots late.)
            skipped_before = s.run.cadence.stats.unchanged_book_rows
            await s.run.cadence.tick(at(slot + 61))
            stats = s.run.cadence.stats
    # Forward fill: every token's latest stored book is its live book at that slot, however
    # many slots were skipped before it.
    latest = await pool.fetch(
        "SELECT DISTINCT ON (token_id) * FROM orderbook_snapshots WHERE ts <= to_timestamp($1) "
        "ORDER BY token_id, ts DESC",
        slot,
    )
    stored = {r["token_id"]: book_digest(stored_row(r)) for r in latest}
    assert live
    assert {t: stored.get(t) for t in live} == live
    assert stats.unchanged_book_rows > skipped_before
    assert await pool.fetchval(REPEATS, KEYFRAME_S) == 0
    assert await feature_repeats(pool) == 0
