"""Imbalances computed by the views from the 10-level depths beside them (migration 0021)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from polyfarm.markets.book_stats import book_stats
from polyfarm.store.compact_snapshots import depth_imbalance, stored_imbalance
from polyfarm.store.rejection import RejectionKind
from polyfarm.store.rows import FEATURE_COLUMNS, MARKET_FEATURES, ORDERBOOK_SNAPSHOTS, FeatureRow
from polyfarm.store.writer import BulkWriter

from .factories import T0, as_before_0020, book_row, feature_row

NOW = T0 + timedelta(hours=1)


def random_side(rng: random.Random, best: float, step: float) -> list[tuple[float, float]]:
    sizes = (round(rng.uniform(1, 5_000), rng.choice((0, 2, 6))) for _ in range(30))
    return [(round(best + i * step, 4), size) for i, size in enumerate(sizes)][: rng.randint(0, 30)]


def test_the_depths_give_back_book_stats_imbalance_to_the_bit() -> None:
    rng = random.Random(7)
    for _ in range(2_000):
        stats = book_stats(random_side(rng, 0.49, -0.01), random_side(rng, 0.51, 0.01), 5.0)
        derived = depth_imbalance(stats.bid_depth[1], stats.ask_depth[1])
        assert derived == stats.imbalance
        assert derived is None or derived.hex() == stats.imbalance.hex()  # type: ignore[union-attr]


def test_only_an_imbalance_the_depths_do_not_give_is_stored() -> None:
    assert stored_imbalance((350 - 380) / 730, 350.0, 380.0) is None
    assert stored_imbalance(-0.04, 350.0, 380.0) == -0.04
    assert stored_imbalance(None, 0.0, 0.0) is None
    assert stored_imbalance(0.5, 0.0, 0.0) == 0.5  # the depths give none


def writer(pool: asyncpg.Pool) -> BulkWriter:
    return BulkWriter(pool, max_future_skew_s=3600, clock=lambda: NOW)


def book_with_imbalance(i: int, imbalance: float | None) -> Any:
    return book_row(i)._replace(imbalance=imbalance)


def feature_with_imbalance(i: int, imbalance: float | None) -> FeatureRow:
    row = feature_row(i)
    values = list(row.values)
    values[FEATURE_COLUMNS.index("book_imbalance")] = imbalance
    return row._replace(values=tuple(values))


async def test_books_read_back_every_imbalance_stored_or_not(pool: asyncpg.Pool) -> None:
    derived = (350.0 - 380.0) / (350.0 + 380.0)  # book_row's 10-level depths
    rows = [book_with_imbalance(0, derived), book_with_imbalance(1, -0.04)]
    assert (await writer(pool).write(ORDERBOOK_SNAPSHOTS, rows)).inserted == 2
    stored = await pool.fetch("SELECT imbalance FROM book_samples ORDER BY ts")
    assert [r["imbalance"] for r in stored] == [None, -0.04]
    read = await pool.fetch("SELECT imbalance FROM orderbook_snapshots ORDER BY ts")
    assert [r["imbalance"].hex() for r in read] == [derived.hex(), (-0.04).hex()]


async def test_features_read_back_every_imbalance_stored_or_not(pool: asyncpg.Pool) -> None:
    named = dict(zip(FEATURE_COLUMNS, feature_row(0).values, strict=True))
    bid, ask = named["bid_depth_10"], named["ask_depth_10"]
    derived = depth_imbalance(bid, ask)
    assert derived is not None
    rows = [feature_with_imbalance(0, derived), feature_with_imbalance(1, 0.25)]
    assert (await writer(pool).write(MARKET_FEATURES, rows)).inserted == 2
    stored = await pool.fetch("SELECT book_imbalance FROM feature_samples ORDER BY ts")
    assert [r["book_imbalance"] for r in stored] == [None, 0.25]
    read = await pool.fetch("SELECT book_imbalance FROM market_features ORDER BY ts")
    assert [r["book_imbalance"].hex() for r in read] == [derived.hex(), (0.25).hex()]


@pytest.mark.parametrize(
    ("spec", "row"),
    [
        (ORDERBOOK_SNAPSHOTS, book_with_imbalance(0, None)),
        (MARKET_FEATURES, feature_with_imbalance(0, None)),
    ],
)
async def test_a_missing_imbalance_the_depths_would_give_is_refused(
    pool: asyncpg.Pool, spec: Any, row: Any
) -> None:
    result = await writer(pool).write(spec, [row])
    assert result.inserted == 0
    (rejected,) = result.rejected
    assert rejected.problem.kind is RejectionKind.VALUE
    assert "10-level depths give" in rejected.reason


async def test_the_storage_before_0021_keeps_every_imbalance(pool: asyncpg.Pool) -> None:
    """``factories.as_before_0020``, which fills databases at older migrations in tests."""
    derived = (350.0 - 380.0) / (350.0 + 380.0)
    old = as_before_0020(ORDERBOOK_SNAPSHOTS)
    assert (await writer(pool).write(old, [book_with_imbalance(0, derived)])).inserted == 1
    assert await pool.fetchval("SELECT imbalance FROM book_samples") == derived
