from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from polyfarm.store.rejection import RejectionKind
from polyfarm.store.rows import (
    BOOK_DELTAS,
    MARKET_FEATURES,
    ORDERBOOK_SNAPSHOTS,
    PRICE_SNAPSHOTS,
    TRADES,
    TableSpec,
    canonical_decimal,
    trade_key,
)
from polyfarm.store.writer import BulkWriter

from .factories import (
    T0,
    book_row,
    delta_row,
    feature_row,
    price_row,
    token,
    trade_row,
)

NOW = T0 + timedelta(hours=1)
ROWS = 20_000  # enough that two batches are being stored at the same time


def writer(pool: asyncpg.Pool) -> BulkWriter:
    return BulkWriter(pool, max_future_skew_s=3600, clock=lambda: NOW)


CASES: list[tuple[TableSpec, Callable[[int], Any]]] = [
    (PRICE_SNAPSHOTS, price_row),
    (ORDERBOOK_SNAPSHOTS, book_row),
    (TRADES, trade_row),
    (BOOK_DELTAS, delta_row),
    (MARKET_FEATURES, feature_row),
]


def _normalise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("[["):
        import json

        return json.loads(value)
    return value


@pytest.mark.parametrize(("spec", "make"), CASES, ids=[c[0].name for c in CASES])
async def test_every_time_series_table_round_trips(
    pool: asyncpg.Pool, spec: TableSpec, make: Callable[[int], Any]
) -> None:
    rows = [make(i) for i in range(5)]
    result = await writer(pool).write(spec, rows)
    assert (result.inserted, result.duplicates, result.rejected) == (5, 0, [])
    stored = await pool.fetch(f"SELECT {', '.join(spec.columns)} FROM {spec.name} ORDER BY ts")
    expected = [tuple(r.flat()) if hasattr(r, "flat") else tuple(r) for r in rows]
    assert [tuple(_normalise(v) for v in s.values()) for s in stored] == [
        tuple(_normalise(v) for v in e) for e in expected
    ]


@pytest.mark.parametrize(("spec", "make"), CASES, ids=[c[0].name for c in CASES])
async def test_re_inserting_a_batch_stores_nothing_twice(
    pool: asyncpg.Pool, spec: TableSpec, make: Callable[[int], Any]
) -> None:
    w = writer(pool)
    first = [make(i) for i in range(10)]
    overlapping = [make(i) for i in range(5, 15)]
    assert (await w.write(spec, first)).inserted == 10
    again = await w.write(spec, first)
    assert (again.inserted, again.duplicates) == (0, 10)
    overlap = await w.write(spec, overlapping)
    assert (overlap.inserted, overlap.duplicates) == (5, 5)
    assert await pool.fetchval(f"SELECT count(*) FROM {spec.name}") == 15


async def test_duplicates_inside_one_batch_are_stored_once(pool: asyncpg.Pool) -> None:
    rows = [price_row(1), price_row(2), price_row(1)]
    result = await writer(pool).write(PRICE_SNAPSHOTS, rows)
    assert (result.inserted, result.duplicates) == (2, 1)


async def test_a_batch_with_invalid_rows_stores_exactly_the_valid_ones(
    pool: asyncpg.Pool,
) -> None:
    good = [price_row(i) for i in range(4)]
    bad = [
        price_row(10)._replace(price=math.nan),
        price_row(11)._replace(best_ask=1.5),
        price_row(12)._replace(best_bid=-0.1),
        price_row(13)._replace(volume_24h=-5.0),
        price_row(14)._replace(liquidity=math.inf),
        price_row(15)._replace(ts=NOW + timedelta(days=2)),
        price_row(16)._replace(ts=datetime(2026, 3, 2, 12, 0)),  # naive
        price_row(17)._replace(token_id=""),
        "not a row at all",
    ]
    w = writer(pool)
    result = await w.write(PRICE_SNAPSHOTS, [bad[0], good[0], bad[1], good[1], *bad[2:], *good[2:]])
    assert result.inserted == 4
    reasons = [r.reason for r in result.rejected]
    assert len(reasons) == len(bad)
    assert reasons[0].startswith("price nan outside")
    assert reasons[1].startswith("best_ask 1.5 outside")
    assert "in the future" in reasons[5]
    assert "without time zone" in reasons[6]
    assert "missing token" in reasons[7]
    assert "malformed row" in reasons[8]
    stored = await pool.fetch("SELECT ts FROM price_snapshots ORDER BY ts")
    assert [r["ts"] for r in stored] == [g.ts for g in good]
    assert sum(w.stats.rejected.values()) == len(bad)
    # The labels rejections are counted under: metrics and dashboards key on these strings.
    assert w.stats.rejected == Counter(
        {
            ("price_snapshots", label): count
            for label, count in [
                ("price", 1),
                ("best_ask", 1),
                ("best_bid", 1),
                ("volume_24h", 1),
                ("liquidity", 1),
                ("timestamp", 2),
                ("missing", 1),
                ("malformed", 1),
            ]
        }
    )
    assert [r.kind for r in result.rejected][5:] == [
        RejectionKind.TIMESTAMP,
        RejectionKind.TIMESTAMP,
        RejectionKind.MISSING_KEY,
        RejectionKind.MALFORMED,
    ]
    assert w.stats.inserted["price_snapshots"] == 4
    kept = await pool.fetch("SELECT source, reason, raw FROM quarantine ORDER BY id")
    assert [r["reason"] for r in kept] == reasons
    assert {r["source"] for r in kept} == {"price_snapshots"}
    assert b"nan" in kept[0]["raw"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"price": 1.01}, "price"),
        ({"size": 0.0}, "size"),
        ({"size": -3.0}, "size"),
        ({"side": "HOLD"}, "side"),
        ({"trade_key": b"short"}, "trade_key"),
    ],
)
async def test_invalid_trades_are_refused_with_a_reason(
    pool: asyncpg.Pool, change: dict[str, Any], reason: str
) -> None:
    result = await writer(pool).write(TRADES, [trade_row(0)._replace(**change), trade_row(1)])
    assert result.inserted == 1
    (rejected,) = result.rejected
    assert (rejected.kind, rejected.problem.column) == (RejectionKind.VALUE, reason)
    assert rejected.reason.startswith(f"{reason} ")


def test_trade_key_is_stable_across_decimal_spellings() -> None:
    a = trade_key(token(1), 1_700_000_000, ".480", "25.0", "buy")
    b = trade_key(token(1), 1_700_000_000, "0.48", "25", "BUY")
    assert a == b
    assert len(a) == 16
    assert a != trade_key(token(1), 1_700_000_000, "0.48", "25", "BUY", occurrence=1)
    assert a != trade_key(token(1), 1_700_000_001, "0.48", "25", "BUY")
    assert a != trade_key(token(2), 1_700_000_000, "0.48", "25", "BUY")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [(".48", "0.48"), ("0.430", "0.43"), ("25.0", "25"), ("100", "100"), ("0", "0"), ("0.0", "0")],
)
def test_canonical_decimal(text: str, canonical: str) -> None:
    assert canonical_decimal(text) == canonical


async def test_writes_are_visible_with_utc_timestamps(pool: asyncpg.Pool) -> None:
    await writer(pool).write(PRICE_SNAPSHOTS, [price_row(0)])
    ts = await pool.fetchval("SELECT ts FROM price_snapshots")
    assert ts == T0
    assert ts.utcoffset() == timedelta(0)
    assert ts.tzinfo is not None
    assert ts.astimezone(UTC) == T0


@pytest.mark.parametrize(("spec", "make"), [(TRADES, trade_row), (BOOK_DELTAS, delta_row)])
async def test_two_writers_of_the_same_rows_in_opposite_orders_never_deadlock(
    pool: asyncpg.Pool, spec: TableSpec, make: Callable[[int], Any]
) -> None:
    """Two collectors (or a repair beside the live stream) store the same rows at once, each
    in its own order of arrival: batches go in key order, so one waits for the other and then
    skips its rows, instead of each holding a row the other needs."""

    def later_writer() -> BulkWriter:  # the rows span hours: none of them from the future
        return BulkWriter(pool, max_future_skew_s=3600, clock=lambda: T0 + timedelta(days=1))

    for round_ in range(3):
        rows = [make(round_ * ROWS + i) for i in range(ROWS)]
        results = await asyncio.gather(
            later_writer().write(spec, rows), later_writer().write(spec, rows[::-1])
        )
        assert sum(r.inserted for r in results) == len(rows)
    assert await pool.fetchval(f"SELECT count(*) FROM {spec.name}") == 3 * ROWS
