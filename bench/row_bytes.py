"""Bytes per row of every time-series table, and token-day read latency, from a synthetic load.

A direct load, without the daemon or the simulator: venue-shaped rows go through polyfarm's
``BulkWriter`` into a fresh, fully migrated database (the embedded PostgreSQL, or a new database
on the server ``--dsn`` names), one minute at a time.

1. **Footprint**: ``--tokens`` tokens for ``--minutes`` minutes; price snapshots, order-book
   snapshots and features once per token per minute, trades and book deltas at the venue's
   ratios to them (BENCHMARKS.md, "Footprint": 0.28 and 2.8 per price snapshot). Per table:
   rows, bytes on disk (heap, indexes and TOAST of the table or every chunk) and bytes per row;
   on TimescaleDB also after compressing every chunk. A public name that is a view is measured
   by the table that holds its rows (its ``TableSpec.storage``), and the token registry is
   reported on its own. (The script also runs against older checkouts, where every public name
   is a table.)
2. **A day's index**: ``--day-tokens`` tokens for one day of price snapshots at one per minute
   (0: skipped), then the heap and each index of what holds that day: the day's partition on
   plain PostgreSQL (migration 0015), the table on an older schema, the chunks on TimescaleDB.
3. **Reads**: ``--read-tokens`` tokens for one day of price snapshots at one per minute, the
   aggregates brought up to date, then ``--reads`` token-day reads of random tokens (warm
   cache): the raw rows, and 1-minute and 5-minute candles (``polyfarm.store.queries.candles``).
   On TimescaleDB the reads are timed again once every chunk is compressed.

    python bench/row_bytes.py [--tokens 40000] [--minutes 25] [--day-tokens 0]
        [--read-tokens 1000] [--dsn URL] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from polyfarm.markets.book_stats import book_stats
from polyfarm.store.database import create_pool
from polyfarm.store.maintenance import AGGREGATE_VIEWS, refresh_aggregates
from polyfarm.store.queries import candles
from polyfarm.store.rows import (
    BOOK_DELTAS,
    FEATURE_COLUMNS,
    MARKET_FEATURES,
    ORDERBOOK_SNAPSHOTS,
    PRICE_SNAPSHOTS,
    TIME_SERIES_TABLES,
    TRADES,
    BookDeltaRow,
    FeatureRow,
    OrderBookSnapshotRow,
    PriceSnapshotRow,
    TradeRow,
    trade_key,
)
from polyfarm.store.writer import BulkWriter
from scratch_db import admin_server, drop_database, fresh_database

START = datetime(2026, 3, 2, tzinfo=UTC)
TABLES = ("price_snapshots", "orderbook_snapshots", "market_features", "book_deltas", "trades")
REGISTRY = ("token_keys",)
TRADES_PER_SNAPSHOT = 0.28
DELTAS_PER_SNAPSHOT = 2.8
BOOK_DEPTH = 5  # settings.orderbook.depth
_PRICE_FEATURES = frozenset(
    {"price", "best_bid", "best_ask", "last_trade_price", "midpoint", "microprice", "vwap_1h"}
    | {"bid_wall_price", "ask_wall_price"}
)
_INT_FEATURES = frozenset(
    {"bid_levels", "ask_levels", "trade_count_1h", "buy_count_1h", "sell_count_1h"}
    | {"whale_count_1h", "day_of_week", "hour_of_day"}
)


# -- venue-shaped rows ------------------------------------------------------------------------


@dataclass
class Token:
    token_id: str
    market_id: str
    tick: Decimal
    mid: Decimal  # on the tick grid
    volume_24h: float
    liquidity: float


def make_tokens(count: int, rng: random.Random) -> list[Token]:
    tokens = []
    for i in range(count):
        tick = Decimal("0.001") if rng.random() < 0.2 else Decimal("0.01")
        mid = (Decimal(rng.randint(20, 980)) / 1000).quantize(tick)
        tokens.append(
            Token(
                str(10**76 + rng.randrange(9 * 10**76)),
                str(500_000 + i // 2),
                tick,
                mid,
                round(rng.uniform(0, 2e5), 6),
                round(rng.uniform(0, 5e5), 6),
            )
        )
    return tokens


def step(token: Token, rng: random.Random) -> None:
    moved = token.mid + token.tick * rng.choice((-1, 0, 0, 0, 1))
    token.mid = min(max(moved, token.tick * 2), 1 - token.tick * 2)


def price_row(ts: datetime, token: Token, rng: random.Random) -> PriceSnapshotRow:
    bid, ask = token.mid - token.tick, token.mid + token.tick
    last = float(token.mid + token.tick * rng.choice((-1, 0, 1)))
    if rng.random() < 0.05:  # one side of the book empty: the last trade is the price
        return PriceSnapshotRow(
            ts, token.token_id, token.market_id, last, float(bid), None, None, last,
            token.volume_24h, token.liquidity,
        )  # fmt: skip
    return PriceSnapshotRow(
        ts, token.token_id, token.market_id, float((bid + ask) / 2), float(bid), float(ask),
        float(ask - bid), last, token.volume_24h, token.liquidity,
    )  # fmt: skip


def book_levels(token: Token, rng: random.Random, side: int) -> list[tuple[float, float]]:
    count = rng.randint(3, 40)
    start = token.mid - token.tick if side > 0 else token.mid + token.tick
    return [
        (float(start - side * i * token.tick), round(rng.uniform(5, 5_000), 2))
        for i in range(count)
        if 0 < start - side * i * token.tick < 1
    ]


def book_row(ts: datetime, token: Token, rng: random.Random) -> OrderBookSnapshotRow:
    bids, asks = book_levels(token, rng, 1), book_levels(token, rng, -1)
    stats = book_stats(bids, asks, 5.0)
    return OrderBookSnapshotRow(
        ts, token.token_id, token.market_id, "ws" if rng.random() < 0.8 else "rest",
        orjson.dumps(bids[:BOOK_DEPTH]).decode(), orjson.dumps(asks[:BOOK_DEPTH]).decode(),
        stats.best_bid, stats.best_ask, stats.spread, stats.midpoint, stats.bid_depth_usd,
        stats.ask_depth_usd, stats.bid_levels, stats.ask_levels, *stats.bid_depth,
        *stats.ask_depth, stats.imbalance,
        stats.bid_wall.price if stats.bid_wall else None,
        stats.bid_wall.size if stats.bid_wall else None,
        stats.ask_wall.price if stats.ask_wall else None,
        stats.ask_wall.size if stats.ask_wall else None,
        f"{rng.getrandbits(160):040x}", ts - timedelta(seconds=rng.randint(0, 50)),
    )  # fmt: skip


def trade_row(ts: datetime, token: Token, rng: random.Random, n: int) -> TradeRow:
    at = ts + timedelta(seconds=rng.randint(0, 59))
    ms = int(at.timestamp()) * 1000 + rng.randint(0, 999)
    price = token.mid + token.tick * rng.choice((-1, 1))
    size = Decimal(rng.randint(100, 500_000)) / 100
    side = rng.choice(("BUY", "SELL"))
    key = trade_key(token.token_id, int(at.timestamp()), str(price), str(size), side, n)
    ws = rng.random() < 0.9
    return TradeRow(
        at, token.token_id, token.market_id, key, float(price), float(size), side,
        0.0 if ws else None, f"0x{rng.getrandbits(256):064x}", "ws" if ws else "data_api",
        ms if ws else None, at + timedelta(milliseconds=rng.randint(20, 400)),
    )  # fmt: skip


def delta_row(ts: datetime, token: Token, rng: random.Random, seq: int) -> BookDeltaRow:
    at = ts + timedelta(milliseconds=rng.randint(0, 59_999))
    side = rng.choice(("BUY", "SELL"))
    offset = rng.randint(1, 8) * (-1 if side == "BUY" else 1)
    price = min(max(token.mid + token.tick * offset, token.tick), 1 - token.tick)
    size = 0.0 if rng.random() < 0.2 else round(rng.uniform(5, 5_000), 2)
    bid, ask = token.mid - token.tick, token.mid + token.tick
    return BookDeltaRow(
        at, token.token_id, token.market_id, seq, side, float(price), size, float(bid),
        float(ask), at + timedelta(milliseconds=rng.randint(20, 400)),
    )  # fmt: skip


def feature_row(ts: datetime, token: Token, rng: random.Random) -> FeatureRow:
    values: dict[str, float | int | bool | None] = {}
    for name in FEATURE_COLUMNS:
        if name == "neg_risk":
            values[name] = rng.random() < 0.3
        elif name in _INT_FEATURES:
            values[name] = rng.randint(0, 50)
        elif rng.random() < 0.15:
            values[name] = None
        elif name in _PRICE_FEATURES:
            values[name] = float(token.mid + token.tick * rng.choice((-1, 0, 1)))
        elif name == "tick_size":
            values[name] = float(token.tick)
        else:
            values[name] = rng.uniform(0, 1) if rng.random() < 0.5 else rng.uniform(0, 1e4)
    # As polyfarm.stream.features: the spread, midpoint and price follow from the book.
    bid, ask = values["best_bid"], values["best_ask"]
    both = bid is not None and ask is not None
    values["spread"] = float(Decimal(str(ask)) - Decimal(str(bid))) if both else None
    values["midpoint"] = float((Decimal(str(ask)) + Decimal(str(bid))) / 2) if both else None
    values["price"] = values["midpoint"] if both else values["last_trade_price"]
    row = tuple(values.values())
    return FeatureRow(ts, token.token_id, token.market_id, rng.randint(0, 4), row)


# -- the database -----------------------------------------------------------------------------


async def has_timescaledb(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
    )


async def relation_bytes(conn: asyncpg.Connection, table: str, part: str = "total") -> int:
    """Heap + indexes + TOAST (``part="total"``) or the indexes alone (``"indexes"``) of a
    table, of every partition of a partitioned one, or of every chunk of a hypertable."""
    if await has_timescaledb(conn) and await conn.fetchval(
        "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = $1",
        table,
    ):
        size = "hypertable_size" if part == "total" else "hypertable_index_size"
        return int(await conn.fetchval(f"SELECT {size}($1::regclass)", table) or 0)
    size = "pg_total_relation_size" if part == "total" else "pg_indexes_size"
    # pg_partition_tree lists nothing for a table that is not partitioned.
    return int(
        await conn.fetchval(
            f"SELECT CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum({size}(t.relid)), 0) "  # noqa: S608 - one of two names
            "FROM pg_partition_tree(c.oid) t WHERE t.isleaf) "
            f"ELSE {size}(c.oid) END FROM pg_class c WHERE c.oid = $1::regclass",
            table,
        )
        or 0
    )


async def physical_table(conn: asyncpg.Connection, name: str) -> str:
    kind = await conn.fetchval("SELECT relkind::text FROM pg_class WHERE oid = $1::regclass", name)
    if kind != "v":
        return name
    spec = {s.name: s for s in TIME_SERIES_TABLES}[name]
    return str(spec.storage.table)


async def table_sizes(conn: asyncpg.Connection) -> dict[str, dict[str, int]]:
    sizes = {}
    for name in TABLES:
        rows = int(await conn.fetchval(f"SELECT count(*) FROM {name}"))  # noqa: S608
        physical = await physical_table(conn, name)
        total = await relation_bytes(conn, physical)
        indexes = await relation_bytes(conn, physical, "indexes")
        sizes[name] = {"rows": rows, "bytes": total, "index_bytes": indexes}
    for name in REGISTRY:
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
            rows = int(await conn.fetchval(f"SELECT count(*) FROM {name}"))  # noqa: S608
            sizes[name] = {
                "rows": rows,
                "bytes": await relation_bytes(conn, name),
                "index_bytes": await relation_bytes(conn, name, "indexes"),
            }
    return sizes


async def compress_all(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "SELECT compress_chunk(c, if_not_compressed => true) "
        "FROM (SELECT format('%I.%I', hypertable_schema, hypertable_name)::regclass AS t "
        "      FROM timescaledb_information.hypertables WHERE compression_enabled) h, "
        "LATERAL show_chunks(h.t) c"
    )


async def refresh_all(conn: asyncpg.Connection) -> None:
    if not await has_timescaledb(conn):
        await refresh_aggregates(conn)
        return
    continuous = {
        r[0]
        for r in await conn.fetch(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates"
        )
    }
    for view in AGGREGATE_VIEWS:  # in hierarchy order
        if view in continuous:
            await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")


# -- the two phases ---------------------------------------------------------------------------


async def write(writer: BulkWriter, spec: Any, rows: list[Any]) -> None:
    result = await writer.write(spec, rows)
    assert result.inserted == len(rows), (spec.name, result)
    assert not result.rejected, (spec.name, result.rejected[:3])


async def load_venue(pool: asyncpg.Pool, tokens: int, minutes: int, seed: int) -> float:
    rng = random.Random(seed)
    universe = make_tokens(tokens, rng)
    writer = BulkWriter(pool, clock=lambda: START + timedelta(days=30))
    seq, trade_n = 0, 0
    started = time.perf_counter()
    for minute in range(minutes):
        ts = START + timedelta(minutes=minute)
        for token in universe:
            step(token, rng)
        await write(writer, PRICE_SNAPSHOTS, [price_row(ts, t, rng) for t in universe])
        await write(writer, ORDERBOOK_SNAPSHOTS, [book_row(ts, t, rng) for t in universe])
        await write(writer, MARKET_FEATURES, [feature_row(ts, t, rng) for t in universe])
        trades = []
        for _ in range(int(len(universe) * TRADES_PER_SNAPSHOT)):
            trade_n += 1
            trades.append(trade_row(ts, rng.choice(universe), rng, trade_n))
        await write(writer, TRADES, trades)
        deltas = []
        for _ in range(int(len(universe) * DELTAS_PER_SNAPSHOT)):
            seq += 1
            deltas.append(delta_row(ts, rng.choice(universe), rng, seq))
        await write(writer, BOOK_DELTAS, deltas)
        print(f"  minute {minute + 1} of {minutes}", file=sys.stderr)
    return time.perf_counter() - started


async def load_day(pool: asyncpg.Pool, tokens: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    universe = make_tokens(tokens, rng)
    writer = BulkWriter(pool, clock=lambda: START + timedelta(days=30))
    batch: list[PriceSnapshotRow] = []
    for minute in range(1440):
        ts = START + timedelta(minutes=minute)
        for token in universe:
            step(token, rng)
            batch.append(price_row(ts, token, rng))
        if len(batch) >= 50_000 or minute == 1439:
            await write(writer, PRICE_SNAPSHOTS, batch)
            batch = []
    return [t.token_id for t in universe]


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"median_ms": round(statistics.median(ordered), 3), "p99_ms": round(p99, 3)}


async def time_reads(
    pool: asyncpg.Pool, token_ids: list[str], reads: int, seed: int
) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)
    day = (START, START + timedelta(days=1))
    raw = (
        "SELECT ts, price, best_bid, best_ask, spread, last_trade_price, volume_24h, liquidity "
        "FROM price_snapshots WHERE token_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts"
    )
    timings: dict[str, list[float]] = {"raw": [], "candles_1m": [], "candles_5m": []}
    async with pool.acquire() as conn:
        for token in token_ids:  # warm the cache: every token once, untimed
            await conn.fetch(raw, token, *day)
        for _ in range(reads):
            token = rng.choice(token_ids)
            started = time.perf_counter()
            rows = await conn.fetch(raw, token, *day)
            timings["raw"].append((time.perf_counter() - started) * 1000)
            assert len(rows) == 1440, len(rows)
            for interval, buckets in (("1m", 1440), ("5m", 288)):
                started = time.perf_counter()
                got = await candles(conn, token, interval, *day)
                timings[f"candles_{interval}"].append((time.perf_counter() - started) * 1000)
                assert len(got) == buckets, (interval, len(got))
    return {name: summary(values) for name, values in timings.items()}


def per_row(sizes: dict[str, dict[str, int]], key: str = "bytes") -> dict[str, float | None]:
    return {name: round(s[key] / s["rows"], 1) if s["rows"] else None for name, s in sizes.items()}


async def footprint(admin_dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    dsn = await fresh_database(admin_dsn, "rowbytes", START)
    try:
        pool = await create_pool(dsn, min_size=1, max_size=2)
        try:
            seconds = await load_venue(pool, args.tokens, args.minutes, args.seed)
            async with pool.acquire() as conn:
                await conn.execute("VACUUM ANALYZE")
                sizes = await table_sizes(conn)
                result: dict[str, Any] = {
                    "flavor": "timescaledb" if await has_timescaledb(conn) else "plain",
                    "load_seconds": round(seconds, 1),
                    "rows": {k: v["rows"] for k, v in sizes.items()},
                    "bytes_per_row": per_row(sizes),
                    "index_bytes_per_row": per_row(sizes, "index_bytes"),
                }
                if result["flavor"] == "timescaledb":
                    await compress_all(conn)
                    result["compressed_bytes_per_row"] = per_row(await table_sizes(conn))
        finally:
            await pool.close()
    finally:
        await drop_database(admin_dsn, dsn)
    return result


_DAY_SIZES = """
SELECT count(*) AS relations, coalesce(sum(pg_relation_size(t.relid)), 0) AS heap,
       coalesce(sum(pg_indexes_size(t.relid)), 0) AS indexes
FROM (SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf
      UNION SELECT $1::regclass WHERE NOT EXISTS (SELECT FROM pg_partition_tree($1::regclass)))
     AS t(relid)
WHERE pg_relation_size(t.relid) > 0
"""


async def day_index(admin_dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    """One day of price snapshots: the rows, and the heap and indexes of what holds them."""
    dsn = await fresh_database(admin_dsn, "rowbytes", START)
    try:
        pool = await create_pool(dsn, min_size=1, max_size=2)
        try:
            started = time.perf_counter()
            await load_day(pool, args.day_tokens, args.seed + 2)
            seconds = time.perf_counter() - started
            async with pool.acquire() as conn:
                await conn.execute("VACUUM ANALYZE")
                physical = await physical_table(conn, "price_snapshots")
                if await has_timescaledb(conn):
                    heap = await relation_bytes(conn, physical)
                    indexes = await relation_bytes(conn, physical, "indexes")
                    holders, heap = "chunks", heap - indexes
                else:
                    sizes = await conn.fetchrow(_DAY_SIZES, physical)
                    holders, heap, indexes = (
                        f"{sizes['relations']} relation(s)",
                        sizes["heap"],
                        sizes["indexes"],
                    )
                rows = int(await conn.fetchval(f"SELECT count(*) FROM {physical}"))  # noqa: S608
        finally:
            await pool.close()
    finally:
        await drop_database(admin_dsn, dsn)
    return {
        "day_tokens": args.day_tokens,
        "day_rows": rows,
        "day_load_seconds": round(seconds, 1),
        "day_holders": holders,
        "day_heap_bytes": int(heap),
        "day_index_bytes": int(indexes),
    }


async def reads(admin_dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    dsn = await fresh_database(admin_dsn, "rowbytes", START)
    try:
        pool = await create_pool(dsn, min_size=1, max_size=2)
        try:
            token_ids = await load_day(pool, args.read_tokens, args.seed + 1)
            async with pool.acquire() as conn:
                await refresh_all(conn)
                await conn.execute("VACUUM ANALYZE")
                timescale = await has_timescaledb(conn)
            result: dict[str, Any] = {"token_day": await time_reads(pool, token_ids, args.reads, 1)}
            if timescale:
                async with pool.acquire() as conn:
                    await compress_all(conn)
                    await conn.execute("VACUUM ANALYZE")
                    day = await table_sizes(conn)
                result["token_day_compressed"] = await time_reads(pool, token_ids, args.reads, 1)
                result["day_compressed_bytes_per_row"] = per_row(day)["price_snapshots"]
        finally:
            await pool.close()
    finally:
        await drop_database(admin_dsn, dsn)
    return result


async def run(args: argparse.Namespace, admin_dsn: str) -> dict[str, Any]:
    result: dict[str, Any] = {"tokens": args.tokens, "minutes": args.minutes}
    if args.minutes:
        result |= await footprint(admin_dsn, args)
    if args.day_tokens:
        result |= await day_index(admin_dsn, args)
    if args.read_tokens:
        result["read_tokens"] = args.read_tokens
        result |= await reads(admin_dsn, args)
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return result


def print_table(result: dict[str, Any]) -> None:
    if "bytes_per_row" in result:
        print(f"{result['flavor']}: {result['tokens']:,} tokens x {result['minutes']} minutes")
        compressed = result.get("compressed_bytes_per_row", {})
        for name, bpr in result["bytes_per_row"].items():
            index = result["index_bytes_per_row"].get(name) or 0
            line = f"  {name:<22}{result['rows'][name]:>12,} rows {bpr or 0:>9.1f} B/row"
            line += f" (indexes {index:>5.1f})"
            if name in compressed:
                line += f"  compressed {compressed[name] or 0:>7.1f} B/row"
            print(line)
    if "day_rows" in result:
        print(
            f"one day of price snapshots ({result['day_tokens']:,} tokens, {result['day_rows']:,} "
            f"rows, in {result['day_holders']}): heap {result['day_heap_bytes'] / 2**20:,.1f} MiB, "
            f"indexes {result['day_index_bytes'] / 2**20:,.1f} MiB "
            f"({result['day_index_bytes'] / result['day_rows']:.1f} B/row)"
        )
    for key in ("token_day", "token_day_compressed"):
        if key in result:
            print(f"{key.replace('_', '-')} reads ({result['read_tokens']:,} tokens x 1 day):")
            for name, figures in result[key].items():
                print(f"  {name:<12} median {figures['median_ms']:>7.2f} ms  p99 "
                      f"{figures['p99_ms']:>7.2f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=40_000)
    parser.add_argument("--minutes", type=int, default=25, help="0: skip the footprint phase")
    parser.add_argument(
        "--day-tokens", type=int, default=0, help="a day's index at this many tokens (0: skip)"
    )
    parser.add_argument("--read-tokens", type=int, default=1_000, help="0: skip the reads")
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dsn", help="admin DSN of a server to use instead of the embedded one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with admin_server(args.dsn, "rowbytes") as (admin_dsn, _):
        result = asyncio.run(run(args, admin_dsn))
    print_table(result)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
