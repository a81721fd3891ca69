"""Order-book depths computed by the view from the levels stored beside them (migration 0023)."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import asyncpg

from polyfarm.markets.book_stats import book_stats, depth
from polyfarm.store.compact import to_micros
from polyfarm.store.compact_snapshots import DEPTH_LEVELS, stored_depths
from polyfarm.store.rejection import RejectionKind
from polyfarm.store.rows import ORDERBOOK_SNAPSHOTS, OrderBookSnapshotRow
from polyfarm.store.writer import BulkWriter

from .factories import T0, book_row

NOW = T0 + timedelta(days=1)
DEPTHS = [f"{side}_depth_{n}" for side in ("bid", "ask") for n in DEPTH_LEVELS]


def random_side(rng: random.Random, best: float, step: float) -> list[tuple[float, float]]:
    """Up to 60 levels, sizes with 0 to 6 decimals as the venue sends them."""
    sizes = [round(rng.uniform(0.000001, 90_000), rng.choice((0, 2, 6))) for _ in range(60)]
    levels = [(round(best + i * step, 2), size) for i, size in enumerate(sizes)]
    return levels[: rng.choice((0, 1, 3, 5, 7, 12, 25, 60))]


def test_a_depth_is_the_exact_decimal_sum_of_the_sizes() -> None:
    rng = random.Random(2)
    off_by_float_sum = 0
    for _ in range(3_000):
        side = random_side(rng, 0.49, -0.01)
        for n in DEPTH_LEVELS:
            exact = sum((Fraction(Decimal(repr(size))) for _, size in side[:n]), Fraction(0))
            assert depth(side, n) == float(exact)
            off_by_float_sum += sum(size for _, size in side[:n]) != float(exact)
    assert off_by_float_sum > 0  # what a float sum would have stored instead, now and then


def test_only_a_depth_the_stored_levels_do_not_give_is_stored() -> None:
    side = [(0.49 - 0.01 * i, 100.5 + i) for i in range(8)]
    micro = [(to_micros(p), to_micros(s)) for p, s in side[:5]]  # orderbook.depth = 5
    values = [depth(side, n) for n in DEPTH_LEVELS]
    assert stored_depths(values, micro) == [None, *values[1:]]
    thin = micro[:3]
    assert stored_depths([depth(side[:3], n) for n in DEPTH_LEVELS], thin) == [None] * 4
    float_sum = sum(s for _, s in side[:5]) + 2e-12  # a value the levels do not give
    assert stored_depths([float_sum, *values[1:]], micro)[0] == float_sum
    assert stored_depths([0.0] * 4, []) == [None] * 4


def writer(pool: asyncpg.Pool) -> BulkWriter:
    return BulkWriter(pool, max_future_skew_s=3600, clock=lambda: NOW)


def random_book(rng: random.Random, i: int) -> OrderBookSnapshotRow:
    """A book row as ``markets.snapshots.snapshot_row`` makes one: the top 5 levels of each
    side stored, ``book_stats`` of the whole book."""
    bids, asks = random_side(rng, 0.49, -0.01), random_side(rng, 0.51, 0.01)
    stats = book_stats(bids, asks, 5.0)
    walls = [(w.price, w.size) if w else (None, None) for w in (stats.bid_wall, stats.ask_wall)]
    return OrderBookSnapshotRow(
        T0 + timedelta(minutes=i), f"{9000 + i % 3}", "100", "ws",
        json.dumps(bids[:5]), json.dumps(asks[:5]), stats.best_bid, stats.best_ask,
        stats.spread, stats.midpoint, stats.bid_depth_usd, stats.ask_depth_usd,
        stats.bid_levels, stats.ask_levels, *stats.bid_depth, *stats.ask_depth,
        stats.imbalance, *walls[0], *walls[1], f"{i:040x}", None,
    )  # fmt: skip


async def test_the_view_gives_back_every_depth_and_imbalance(pool: asyncpg.Pool) -> None:
    rng = random.Random(9)
    rows = [random_book(rng, i) for i in range(300)]
    assert (await writer(pool).write(ORDERBOOK_SNAPSHOTS, rows)).inserted == len(rows)
    stored = await pool.fetchrow(
        "SELECT count(*) FILTER (WHERE bid_depth_5 IS NOT NULL) AS five,"
        " count(*) FILTER (WHERE bid_depth_50 IS NULL) AS fifty FROM book_samples"
    )
    thin = sum(row.bid_levels <= 5 for row in rows)
    assert (stored["five"], stored["fifty"]) == (0, thin)
    read = await pool.fetch(
        f"SELECT ts, token_id, imbalance, {', '.join(DEPTHS)} FROM orderbook_snapshots"
        " ORDER BY ts, token_id"
    )
    for record, row in zip(read, sorted(rows), strict=True):
        for name in (*DEPTHS, "imbalance"):
            want, got = getattr(row, name), record[name]
            assert (got is None and want is None) or got.hex() == want.hex(), (row.ts, name)


async def test_a_missing_depth_is_refused(pool: asyncpg.Pool) -> None:
    result = await writer(pool).write(
        ORDERBOOK_SNAPSHOTS, [book_row(0)._replace(ask_depth_20=None)]
    )
    assert result.inserted == 0
    (rejected,) = result.rejected
    assert rejected.problem.kind is RejectionKind.VALUE
    assert "ask_depth_20 is missing" in rejected.reason


def test_book_stats_gives_each_depth_as_depth_does() -> None:
    rng = random.Random(4)
    for _ in range(500):
        bids, asks = random_side(rng, 0.49, -0.01), random_side(rng, 0.51, 0.01)
        stats = book_stats(bids, asks, 5.0)
        assert stats.bid_depth == tuple(depth(bids, n) for n in DEPTH_LEVELS)
        assert stats.ask_depth == tuple(depth(asks, n) for n in DEPTH_LEVELS)
