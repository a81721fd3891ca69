"""Migrations 0011 to 0013 on populated databases: every row and aggregate reads back as before.

Each test builds a database at the version before, fills the old tables straight (as the
writer of the time stored them): many tokens, every nullable column NULL somewhere, prices at
the extremes 0 and 1, 4-decimal prices and 5-decimal midpoints, 6-decimal sizes, canonical and
odd hashes. Everything is read (the aggregates brought up to date first); then the migration
is applied and everything is read again through the views of the old names.

Rows and candles must be equal value for value. Trade volumes are sums of doubles before and
exact sums after, and a double sum depends on the order the rows were added in (on either
schema), so those are compared to 1e-12. One token holds values from the time before the
producers computed spreads and midpoints in decimals (off the decimal by an ulp): they come
back as the nearest micro-unit, which is checked on its own.
"""

from __future__ import annotations

import math
import random
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from polyfarm.store.compact import from_micros, to_micros
from polyfarm.store.maintenance import refresh_aggregates
from polyfarm.store.migrations import default_migrations_dir, migrate
from polyfarm.store.rows import FEATURE_COLUMNS

from ..conftest import Server

START = datetime(2026, 3, 2, 0, 0, 7, 250_000, tzinfo=UTC)
CANDLES = ("candles_1m", "candles_5m", "candles_15m", "candles_1h", "candles_4h", "candles_1d")
OLD_AGGREGATES = (*CANDLES, "trade_volume_1h")
NEW_AGGREGATES = (
    "price_candles_5m", "price_candles_15m", "price_candles_1h", "price_candles_4h",
    "price_candles_1d", "trade_flow_1h",
)  # fmt: skip
TABLES = {
    "price_snapshots": "token_id, ts",
    "trades": "token_id, ts, trade_key",
    "book_deltas": "token_id, ts, seq",
    "orderbook_snapshots": "token_id, ts",
    "market_features": "token_id, ts",
}
# Columns of the tables as 0003 made them (the views of 0011 add token_sid at the end).
COLUMNS = {
    "price_snapshots": "ts, token_id, market_id, price, best_bid, best_ask, spread, "
    "last_trade_price, volume_24h, liquidity",
    "trades": "ts, token_id, market_id, trade_key, price, size, side, fee_rate_bps, "
    "transaction_hash, source, exchange_ms, received_at",
    "book_deltas": "ts, token_id, market_id, seq, side, price, size, best_bid, best_ask, "
    "received_at",
    "orderbook_snapshots": "*",
    "market_features": "*",
}
LEGACY_TOKEN = "9" * 78
SUMS = ("volume", "notional", "vwap", "buy_volume", "sell_volume")


# -- venue-shaped old rows --------------------------------------------------------------------


def price(rng: random.Random) -> Decimal:
    tick = rng.choice(("0.01", "0.001", "0.0001", "0.0025"))
    value = Decimal(tick) * rng.randint(0, int(1 / Decimal(tick)))
    return rng.choice((value, value, value, Decimal(0), Decimal(1)))


def size(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(1, 10 ** rng.choice((3, 8, 12)))).scaleb(-6)


def maybe(rng: random.Random, value: Any, none_share: float = 0.15) -> Any:
    return None if rng.random() < none_share else value


def snapshot(rng: random.Random, ts: datetime, token: str, market: str) -> tuple[Any, ...]:
    bid, ask, last = maybe(rng, price(rng)), maybe(rng, price(rng)), maybe(rng, price(rng))
    both = bid is not None and ask is not None
    mid = (bid + ask) / 2 if both else last
    return (
        ts, token, market, None if mid is None else float(mid), None if bid is None else float(bid),
        None if ask is None else float(ask), float(ask - bid) if both else None,
        None if last is None else float(last), maybe(rng, rng.choice((0.0, rng.uniform(0, 1e7)))),
        maybe(rng, rng.uniform(0, 1e7)),
    )  # fmt: skip


def trade(rng: random.Random, ts: datetime, token: str, market: str) -> tuple[Any, ...]:
    tx = rng.choice((None, "0x" + rng.randbytes(32).hex(), "0x" + rng.randbytes(32).hex().upper(),
                     "0xdef"))  # fmt: skip
    ws = rng.random() < 0.7
    return (
        ts.replace(microsecond=0), token, market, rng.randbytes(16), float(price(rng)),
        float(size(rng)), rng.choice(("BUY", "SELL")), maybe(rng, rng.choice((0.0, 12.5, 1e3))),
        tx, "ws" if ws else "data_api", int(ts.timestamp() * 1000) if ws else None,
        ts + timedelta(milliseconds=rng.randint(1, 900)),
    )  # fmt: skip


def delta(rng: random.Random, ts: datetime, token: str, market: str, seq: int) -> tuple[Any, ...]:
    left = Decimal(0) if rng.random() < 0.2 else size(rng)
    return (
        ts, token, market, seq, rng.choice(("BUY", "SELL")), float(price(rng)), float(left),
        maybe(rng, float(price(rng))), maybe(rng, float(price(rng))),
        ts + timedelta(milliseconds=rng.randint(1, 900)),
    )  # fmt: skip


def legacy_rows(ts: datetime) -> list[tuple[Any, ...]]:
    """Float sums as the producers once stored them: 0.47 + 0.48 ... off the decimal."""
    rows = []
    for i, (bid, ask) in enumerate(((0.47, 0.48), (0.49, 0.51), (0.1, 0.7), (0.0001, 0.3333))):
        rows.append(
            (ts + timedelta(minutes=i), LEGACY_TOKEN, "77", (bid + ask) / 2, bid, ask, ask - bid,
             ask, 0.1 + 0.2, None)
        )  # fmt: skip
    return rows


async def populate(conn: asyncpg.Connection, seed: int = 11) -> None:
    rng = random.Random(seed)
    tokens = [(str(10**76 + rng.randrange(9 * 10**77)), str(1000 + i // 2)) for i in range(60)]
    snapshots, trades, deltas, books, features = [], [], [], [], []
    seq = 0
    for token, market in tokens:
        ts = START + timedelta(seconds=rng.randint(0, 90))
        while ts < START + timedelta(days=2, hours=3):
            snapshots.append(snapshot(rng, ts, token, market))
            for _ in range(rng.choice((0, 0, 1, 3))):
                at = ts + timedelta(seconds=rng.randint(0, 200), microseconds=rng.randint(0, 999))
                trades.append(trade(rng, at, token, market))
                seq += 1
                deltas.append(delta(rng, at, token, market, seq))
            ts += timedelta(seconds=rng.choice((20, 60, 60, 60, 300, 1800)), microseconds=37)
        books.append((START, token, market, "rest", "[[0.5, 10.0]]", "[]"))
        features.append((START, token, market, 2, 0.5, None, 17.25))
    snapshots += legacy_rows(START)
    await conn.copy_records_to_table(
        "price_snapshots", records=snapshots, columns=COLUMNS["price_snapshots"].split(", ")
    )
    await conn.copy_records_to_table(
        "trades", records=trades, columns=COLUMNS["trades"].split(", ")
    )
    await conn.copy_records_to_table(
        "book_deltas", records=deltas, columns=COLUMNS["book_deltas"].split(", ")
    )
    await conn.executemany(
        "INSERT INTO orderbook_snapshots (ts, token_id, market_id, source, bids, asks) "
        "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
        books,
    )
    await conn.executemany(
        "INSERT INTO market_features (ts, token_id, market_id, tier, price, spread, volume_24h) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        features,
    )


# -- reading everything -----------------------------------------------------------------------


async def refresh_old(conn: asyncpg.Connection, server: Server) -> None:
    for view in OLD_AGGREGATES:
        if server.flavor == "plain":
            await conn.execute(f"REFRESH MATERIALIZED VIEW {view}")
        else:
            await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")


async def materialized_only(conn: asyncpg.Connection, server: Server) -> None:
    """Plain: refresh as the maintenance task does. TimescaleDB: read only what the migration
    materialised (no real-time part), which shows the backfill covered every bucket."""
    if server.flavor == "plain":
        await refresh_aggregates(conn)
        return
    for view in NEW_AGGREGATES:
        await conn.execute(
            f"ALTER MATERIALIZED VIEW {view} SET (timescaledb.materialized_only = true)"
        )


async def read_all(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    everything = {}
    for table, order in TABLES.items():
        rows = await conn.fetch(f"SELECT {COLUMNS[table]} FROM {table} ORDER BY {order}")
        everything[table] = [tuple(r) for r in rows]
    for view in (*CANDLES, "trade_volume_1h"):
        rows = await conn.fetch(f"SELECT * FROM {view} ORDER BY token_id, bucket")
        everything[view] = [tuple(v for k, v in r.items() if k != "token_sid") for r in rows]
    return everything


def without_legacy(rows: Sequence[tuple[Any, ...]], token_at: int) -> list[tuple[Any, ...]]:
    return [row for row in rows if row[token_at] != LEGACY_TOKEN]


# -- the test ---------------------------------------------------------------------------------


@pytest.mark.timeout(300)
async def test_every_row_and_aggregate_reads_back_equal(
    server: Server, empty_dsn: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    for path in default_migrations_dir().glob("*.sql"):
        if int(path.name[:4]) <= 10:
            shutil.copy(path, directory)
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn, directory)
        await populate(conn)
        await refresh_old(conn, server)
        before = await read_all(conn)
        shutil.copy(default_migrations_dir() / "0011_compact_rows.sql", directory)
        report = await migrate(conn, directory)
        assert report.applied == ["0011_compact_rows.sql"]
        await materialized_only(conn, server)
        after = await read_all(conn)
        legacy = await conn.fetch(
            f"SELECT {COLUMNS['price_snapshots']} FROM price_snapshots WHERE token_id = $1 "
            "ORDER BY ts",
            LEGACY_TOKEN,
        )
    finally:
        await conn.close()

    assert len(before["price_snapshots"]) > 20_000
    assert all(before.values()), [name for name, rows in before.items() if not rows]
    for table in ("price_snapshots", "trades", "book_deltas"):
        assert without_legacy(after[table], 1) == without_legacy(before[table], 1), table
    for table in ("orderbook_snapshots", "market_features"):
        assert after[table] == before[table], table
    for view in CANDLES:
        assert without_legacy(after[view], 1) == without_legacy(before[view], 1), view
    assert_trade_volume_equal(before["trade_volume_1h"], after["trade_volume_1h"])
    assert_legacy_rows_rounded(
        [r for r in before["price_snapshots"] if r[1] == LEGACY_TOKEN], [tuple(r) for r in legacy]
    )


def assert_trade_volume_equal(before: list[tuple[Any, ...]], after: list[tuple[Any, ...]]) -> None:
    names = ("bucket", "token_id", "trades", *SUMS[:3], *SUMS[3:], "buy_count", "sell_count")
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        old_row = dict(zip((*names, "max_size"), old, strict=True))
        new_row = dict(zip((*names, "max_size"), new, strict=True))
        for name, value in old_row.items():
            if name in SUMS and value is not None:
                assert math.isclose(new_row[name], value, rel_tol=1e-12), (name, old_row)
            else:
                assert new_row[name] == value, (name, old_row)


def assert_legacy_rows_rounded(before: list[tuple[Any, ...]], after: list[tuple[Any, ...]]) -> None:
    assert len(before) == len(after) == 4
    for old, new in zip(before, after, strict=True):
        for column in (3, 4, 5, 6, 7):  # price, bid, ask, spread, last trade
            assert new[column] == from_micros(to_micros(old[column])), (column, old)
            assert abs(new[column] - old[column]) < 1e-15
        assert new[8] == old[8]  # volume_24h: a double, kept as it was (0.30000000000000004)


# -- 0012: order-book snapshots ---------------------------------------------------------------

BOOK_COLUMNS = (
    "ts, token_id, market_id, source, bids, asks, best_bid, best_ask, spread, midpoint, "
    "bid_depth_usd, ask_depth_usd, bid_levels, ask_levels, bid_depth_5, bid_depth_10, "
    "bid_depth_20, bid_depth_50, ask_depth_5, ask_depth_10, ask_depth_20, ask_depth_50, "
    "imbalance, bid_wall_price, bid_wall_size, ask_wall_price, ask_wall_size, book_hash, book_ts"
)


def book(rng: random.Random, ts: datetime, token: str, market: str) -> tuple[Any, ...]:
    """A book as markets/snapshots.py stores one: the first levels are the best prices, the
    spread and midpoint follow from them, walls are levels."""
    sides = []
    for _ in range(2):
        levels = [(price(rng), size(rng)) for _ in range(rng.choice((0, 1, 3, 5, 5, 7)))]
        sides.append([(float(p), float(q)) for p, q in levels])
    bids, asks = sides
    bid = bids[0][0] if bids else None
    ask = asks[0][0] if asks else None
    both = bid is not None and ask is not None
    wall = rng.choice(bids) if bids and rng.random() < 0.5 else None
    book_hash = rng.choice((None, rng.randbytes(20).hex(), "not-hex", rng.randbytes(20).hex()))
    return (
        ts, token, market, rng.choice(("rest", "ws")), orjson.dumps(bids).decode(),
        orjson.dumps(asks).decode(), bid, ask,
        float(Decimal(str(ask)) - Decimal(str(bid))) if both else None,
        float((Decimal(str(ask)) + Decimal(str(bid))) / 2) if both else None,
        maybe(rng, rng.uniform(0, 1e6)), maybe(rng, rng.uniform(0, 1e6)),
        maybe(rng, rng.randint(0, 9_999)), maybe(rng, rng.randint(0, 9_999)),
        *(maybe(rng, rng.uniform(0, 1e5)) for _ in range(8)), maybe(rng, rng.uniform(-1, 1)),
        wall and wall[0], wall and wall[1], None, None, book_hash,
        maybe(rng, ts - timedelta(seconds=rng.randint(0, 90), microseconds=rng.randint(0, 999))),
    )  # fmt: skip


def legacy_book(ts: datetime) -> tuple[Any, ...]:
    """Spread and midpoint as double arithmetic once left them, off the decimal by an ulp."""
    bid, ask = 0.49, 0.51
    levels = orjson.dumps([[bid, 10.5]]).decode(), orjson.dumps([[ask, 2.25]]).decode()
    return (
        ts, LEGACY_TOKEN, "77", "rest", *levels, bid, ask, ask - bid, (ask + bid) / 2, 1.0, 2.0,
        1, 1, *[10.5] * 4, *[0.30000000000000004] * 4, 0.0, None, None, None, None, None, None,
    )  # fmt: skip


async def populate_books(conn: asyncpg.Connection, seed: int = 12) -> None:
    rng = random.Random(seed)
    rows = [legacy_book(START)]
    for i in range(80):
        token, market = str(10**76 + rng.randrange(9 * 10**77)), str(2000 + i // 2)
        ts = START
        for _ in range(rng.randint(20, 60)):
            rows.append(book(rng, ts, token, market))
            ts += timedelta(seconds=rng.choice((1, 60, 300)), microseconds=rng.randint(0, 999))
    await conn.copy_records_to_table(
        "orderbook_snapshots", records=rows, columns=BOOK_COLUMNS.split(", ")
    )


def parsed_levels(rows: list[asyncpg.Record]) -> list[tuple[Any, ...]]:
    """Rows with their levels as numbers: JSONB text spells a whole number 100.0 when it was
    stored from the text "100.0" and 100 when built from the double 100.0."""
    return [(*r[:4], orjson.loads(r[4]), orjson.loads(r[5]), *r[6:]) for r in rows]


async def test_every_order_book_reads_back_equal(
    server: Server, empty_dsn: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    for path in default_migrations_dir().glob("*.sql"):
        if int(path.name[:4]) <= 11:
            shutil.copy(path, directory)
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn, directory)
        await populate_books(conn)
        query = f"SELECT {BOOK_COLUMNS} FROM orderbook_snapshots ORDER BY token_id, ts"
        before = parsed_levels(await conn.fetch(query))
        shutil.copy(default_migrations_dir() / "0012_compact_order_books.sql", directory)
        assert (await migrate(conn, directory)).applied == ["0012_compact_order_books.sql"]
        after = parsed_levels(await conn.fetch(query))
        stored = await conn.fetchval("SELECT count(*) FROM book_samples")
    finally:
        await conn.close()
    assert len(before) > 2_000
    assert stored == len(before)
    assert without_legacy(after, 1) == without_legacy(before, 1)
    (old,) = [r for r in before if r[1] == LEGACY_TOKEN]
    (new,) = [r for r in after if r[1] == LEGACY_TOKEN]
    assert (new[8], new[9]) == (0.02, 0.5)  # the exact spread and midpoint
    assert (old[8], old[9]) != (0.02, 0.5)
    assert new[:8] + new[10:] == old[:8] + old[10:]


# -- 0013: feature rows -----------------------------------------------------------------------

FEATURE_TABLE_COLUMNS = ("ts", "token_id", "market_id", "tier", *FEATURE_COLUMNS)
FEATURE_MICROS = {"best_bid", "best_ask", "last_trade_price", "bid_wall_price", "ask_wall_price"}
FEATURE_COUNTS = {"trade_count_1h", "buy_count_1h", "sell_count_1h", "whale_count_1h"}


def feature_values(rng: random.Random) -> dict[str, Any]:
    """Features as polyfarm.stream.features computes them: the price is the midpoint or else
    the last trade, spread and midpoint exact decimals of the best bid and ask."""
    values: dict[str, Any] = {}
    for name in FEATURE_COLUMNS:
        if name in FEATURE_MICROS:
            values[name] = maybe(rng, float(price(rng)))
        elif name == "tick_size":
            values[name] = maybe(rng, float(Decimal(rng.choice(("0.01", "0.001", "0.0025")))))
        elif name in FEATURE_COUNTS:
            values[name] = maybe(rng, rng.randint(0, 2**31 - 1))
        elif name in ("bid_levels", "ask_levels"):
            values[name] = maybe(rng, rng.randint(0, 9_999))
        elif name in ("day_of_week", "hour_of_day"):
            values[name] = maybe(rng, rng.randint(0, 6))
        elif name == "neg_risk":
            values[name] = maybe(rng, rng.random() < 0.5)
        else:
            values[name] = maybe(rng, rng.choice((0.0, rng.uniform(-1, 1), rng.uniform(0, 1e7))))
    bid, ask = values["best_bid"], values["best_ask"]
    both = bid is not None and ask is not None
    exact = (Decimal(str(bid)), Decimal(str(ask))) if both else None
    values["spread"] = float(exact[1] - exact[0]) if exact else None
    values["midpoint"] = float((exact[0] + exact[1]) / 2) if exact else None
    values["price"] = values["midpoint"] if both else values["last_trade_price"]
    return values


def legacy_feature(ts: datetime) -> tuple[Any, ...]:
    values = dict.fromkeys(FEATURE_COLUMNS)
    bid, ask = 0.47, 0.48
    values |= {"best_bid": bid, "best_ask": ask, "spread": ask - bid, "midpoint": (bid + ask) / 2}
    values |= {"price": (bid + ask) / 2, "volume_1h": 0.1 + 0.2}
    return (ts, LEGACY_TOKEN, "77", 1, *values.values())


async def populate_features(conn: asyncpg.Connection, seed: int = 13) -> None:
    rng = random.Random(seed)
    rows = [legacy_feature(START)]
    for i in range(60):
        token, market = str(10**76 + rng.randrange(9 * 10**77)), str(3000 + i // 2)
        ts = START
        for _ in range(rng.randint(20, 50)):
            tier = maybe(rng, rng.randint(0, 4))
            rows.append((ts, token, market, tier, *feature_values(rng).values()))
            ts += timedelta(seconds=rng.choice((60, 300)), microseconds=rng.randint(0, 999))
    await conn.copy_records_to_table(
        "market_features", records=rows, columns=list(FEATURE_TABLE_COLUMNS)
    )


async def test_every_feature_row_reads_back_equal(
    server: Server, empty_dsn: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    directory.mkdir()
    for path in default_migrations_dir().glob("*.sql"):
        if int(path.name[:4]) <= 12:
            shutil.copy(path, directory)
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn, directory)
        await populate_features(conn)
        columns = ", ".join(FEATURE_TABLE_COLUMNS)
        query = f"SELECT {columns} FROM market_features ORDER BY token_id, ts"
        before = [tuple(r) for r in await conn.fetch(query)]
        shutil.copy(default_migrations_dir() / "0013_compact_features.sql", directory)
        assert (await migrate(conn, directory)).applied == ["0013_compact_features.sql"]
        after = [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()
    assert len(before) > 1_500
    assert without_legacy(after, 1) == without_legacy(before, 1)
    (old,) = [r for r in before if r[1] == LEGACY_TOKEN]
    (new,) = [r for r in after if r[1] == LEGACY_TOKEN]
    named_old = dict(zip(FEATURE_TABLE_COLUMNS, old, strict=True))
    named_new = dict(zip(FEATURE_TABLE_COLUMNS, new, strict=True))
    for name in ("spread", "midpoint", "price"):
        assert named_new[name] == from_micros(to_micros(named_old[name])), name
        assert abs(named_new[name] - named_old[name]) < 1e-15
    assert named_new["volume_1h"] == named_old["volume_1h"] == 0.1 + 0.2  # a double stays one
