"""Compression, retention and chunking, from the settings rather than from migrations.

TimescaleDB: background-job policies and chunk intervals, re-applied whenever the configured
value differs from the one in force (a chunk interval applies to chunks created from then on).
Plain PostgreSQL has no jobs: the maintenance task drops expired day partitions and deletes
other old rows itself (polyfarm.store.maintenance, .partitions).

Sizes (BENCHMARKS.md, "Compression at production segment sizes"): a chunk that takes writes
has its whole B-tree written at random places (every token's rows arrive each minute), so the
chunk intervals (``settings.chunks``) keep those indexes in memory at venue scale; chunks are
compressed ``retention.compress_after_hours`` after their end and merged into compressed
chunks of ``chunks.compressed_hours``, so that a table keeps a few chunks a day, not dozens.
The continuous aggregates are compressed too, once past their refresh window, so that a
refresh never has to rewrite a compressed chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from polyfarm.logs import get_logger
from polyfarm.settings import ChunkSettings, RetentionSettings

log = get_logger(__name__)

# The tables that hold the rows of each public time series (migration 0011 made the public
# names views over them).
STORAGE_TABLES = {
    "price_snapshots": "price_points",
    "orderbook_snapshots": "book_samples",
    "trades": "trade_fills",
    "book_deltas": "book_changes",
    "market_features": "feature_samples",
}
COMPRESSED_TABLES = tuple(STORAGE_TABLES.values())
# The venue's own history that backfills fetch (migration 0019): compressed like the live
# series, and never dropped (it was fetched once, and the venue may no longer serve it).
HISTORY_TABLES = ("history_points",)


@dataclass(frozen=True)
class RetentionRule:
    name: str  # the public table, which reports name
    table: str  # the table that holds its rows
    keep: timedelta


def retention_rules(retention: RetentionSettings) -> list[RetentionRule]:
    raw = timedelta(days=retention.raw_days)
    keep = {
        "price_snapshots": raw,
        "trades": raw,
        "market_features": raw,
        "orderbook_snapshots": timedelta(days=retention.orderbook_days),
        "book_deltas": timedelta(days=retention.book_deltas_days),
    }
    return [RetentionRule(name, STORAGE_TABLES[name], days) for name, days in keep.items()]


@dataclass(frozen=True)
class AggregateStorage:
    """How a continuous aggregate's materialization is chunked and when it is compressed:
    after its refresh policy's window (start_offset) and one bucket more, because a refresh
    starts at the bucket holding the window's start."""

    view: str
    chunk: timedelta  # about ten million rows a chunk at 40,000 tokens
    compress_after: timedelta


AGGREGATES = (
    AggregateStorage("price_candles_5m", timedelta(days=1), timedelta(hours=6, minutes=5)),
    AggregateStorage("price_candles_15m", timedelta(days=3), timedelta(hours=12, minutes=15)),
    AggregateStorage("price_candles_1h", timedelta(days=10), timedelta(days=2, hours=1)),
    AggregateStorage("price_candles_4h", timedelta(days=30), timedelta(days=4, hours=4)),
    AggregateStorage("price_candles_1d", timedelta(days=180), timedelta(days=8)),
    AggregateStorage("trade_flow_1h", timedelta(days=10), timedelta(days=2, hours=1)),
)


# -- policies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyKind:
    """A TimescaleDB policy procedure: where its interval sits in the job's config, and the
    calls that add and remove it (on a hypertable or a continuous aggregate alike)."""

    name: str
    proc: str  # timescaledb_information.jobs.proc_name
    config_key: str
    add_sql: str
    remove_sql: str


COMPRESSION = PolicyKind(
    "compression",
    "policy_compression",
    "compress_after",
    "SELECT add_compression_policy($1::regclass, $2::interval)",
    "SELECT remove_compression_policy($1::regclass, if_exists => true)",
)
RETENTION = PolicyKind(
    "retention",
    "policy_retention",
    "drop_after",
    "SELECT add_retention_policy($1::regclass, $2::interval)",
    "SELECT remove_retention_policy($1::regclass, if_exists => true)",
)


@dataclass(frozen=True)
class Policy:
    kind: PolicyKind
    relation: str  # a hypertable or continuous aggregate, as timescaledb_information names it
    interval: timedelta


def timescale_policies(retention: RetentionSettings) -> list[Policy]:
    """Every policy the settings call for: compression of the raw tables and the aggregates,
    retention of the raw tables."""
    compress_after = retention.compress_after()
    found = [
        Policy(COMPRESSION, table, compress_after)
        for table in (*COMPRESSED_TABLES, *HISTORY_TABLES)
    ]
    found += [Policy(COMPRESSION, a.view, a.compress_after) for a in AGGREGATES]
    found += [Policy(RETENTION, rule.table, rule.keep) for rule in retention_rules(retention)]
    return found


async def _job_interval(conn: asyncpg.Connection, policy: Policy) -> timedelta | None:
    value = await conn.fetchval(
        """
        SELECT (config ->> $3)::interval
        FROM timescaledb_information.jobs
        WHERE proc_name = $1 AND hypertable_name = $2
        """,
        policy.kind.proc,
        policy.relation,
        policy.kind.config_key,
    )
    return value if isinstance(value, timedelta) else None


async def _set_policy(conn: asyncpg.Connection, policy: Policy) -> bool:
    if await _job_interval(conn, policy) == policy.interval:
        return False
    async with conn.transaction():
        await conn.execute(policy.kind.remove_sql, policy.relation)
        await conn.execute(policy.kind.add_sql, policy.relation, policy.interval)
    log.info(
        "policy set", kind=policy.kind.name, table=policy.relation, interval=str(policy.interval)
    )
    return True


# -- chunks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunking:
    relation: str  # a hypertable or continuous aggregate
    chunk: timedelta  # chunk_time_interval of the chunks created from now on
    merged: timedelta | None = None  # compress_chunk_time_interval; None leaves it alone


def chunkings(chunks: ChunkSettings) -> list[Chunking]:
    merged = timedelta(hours=chunks.compressed_hours)
    found = [
        Chunking(STORAGE_TABLES[name], timedelta(hours=hours), merged)
        for name, hours in chunks.by_table().items()
    ]
    found += [Chunking(a.view, a.chunk) for a in AGGREGATES]
    return found


# A continuous aggregate's chunks are its materialization hypertable's.
_CHUNK_INTERVAL = """
SELECT d.time_interval
FROM timescaledb_information.dimensions d
LEFT JOIN timescaledb_information.continuous_aggregates c
       ON c.materialization_hypertable_schema = d.hypertable_schema
      AND c.materialization_hypertable_name = d.hypertable_name
WHERE d.dimension_number = 1 AND coalesce(c.view_name, d.hypertable_name) = $1
"""
_MERGED_INTERVAL = """
SELECT compress_interval_length::interval
FROM timescaledb_information.hypertable_compression_settings
WHERE hypertable = $1::regclass
"""


async def _set_chunking(conn: asyncpg.Connection, chunking: Chunking) -> int:
    changed = 0
    if await conn.fetchval(_CHUNK_INTERVAL, chunking.relation) != chunking.chunk:
        await conn.execute(
            "SELECT set_chunk_time_interval($1::regclass, $2::interval)",
            chunking.relation,
            chunking.chunk,
        )
        log.info("chunk interval set", table=chunking.relation, interval=str(chunking.chunk))
        changed += 1
    merged = chunking.merged
    if merged is not None and await conn.fetchval(_MERGED_INTERVAL, chunking.relation) != merged:
        # ALTER TABLE takes no parameters: migration 0016's function formats the statement.
        await conn.execute(
            "SELECT polyfarm_set_compressed_chunk_interval($1::regclass, $2::interval)",
            chunking.relation,
            merged,
        )
        log.info("compressed chunk interval set", table=chunking.relation, interval=str(merged))
        changed += 1
    return changed


async def apply_chunkings(conn: asyncpg.Connection, chunks: ChunkSettings) -> int:
    """Make the chunk intervals match the settings (the policies left alone); returns how
    many changed."""
    changed = 0
    for chunking in chunkings(chunks):
        changed += await _set_chunking(conn, chunking)
    return changed


async def apply_timescale_policies(
    conn: asyncpg.Connection, retention: RetentionSettings, chunks: ChunkSettings
) -> int:
    """Make the database's policies and chunk intervals match the settings; returns how many
    changed."""
    changed = await apply_chunkings(conn, chunks)
    for policy in timescale_policies(retention):
        changed += await _set_policy(conn, policy)
    return changed
