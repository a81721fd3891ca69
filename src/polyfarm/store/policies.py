"""Compression and retention, from the settings rather than from migrations.

TimescaleDB: background-job policies, re-applied whenever the configured interval differs
from the one in force. Plain PostgreSQL has no jobs: the maintenance task drops expired day
partitions and deletes other old rows itself (polyfarm.store.maintenance, .partitions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from polyfarm.logs import get_logger
from polyfarm.settings import RetentionSettings

log = get_logger(__name__)

# The tables that hold the rows (migration 0011 made some public names views over them).
COMPRESSED_TABLES = (
    "price_points",
    "book_samples",
    "trade_fills",
    "book_changes",
    "feature_samples",
)


@dataclass(frozen=True)
class RetentionRule:
    name: str  # the public table, which reports name
    table: str  # the table that holds its rows
    keep: timedelta


def retention_rules(retention: RetentionSettings) -> list[RetentionRule]:
    raw = timedelta(days=retention.raw_days)
    return [
        RetentionRule("price_snapshots", "price_points", raw),
        RetentionRule("trades", "trade_fills", raw),
        RetentionRule("market_features", "feature_samples", raw),
        RetentionRule(
            "orderbook_snapshots", "book_samples", timedelta(days=retention.orderbook_days)
        ),
        RetentionRule("book_deltas", "book_changes", timedelta(days=retention.book_deltas_days)),
    ]


async def _current_job_setting(
    conn: asyncpg.Connection, proc_name: str, table: str, key: str
) -> timedelta | None:
    value = await conn.fetchval(
        """
        SELECT (config ->> $3)::interval
        FROM timescaledb_information.jobs
        WHERE proc_name = $1 AND hypertable_name = $2
        """,
        proc_name,
        table,
        key,
    )
    return value if isinstance(value, timedelta) else None


async def _set_policy(conn: asyncpg.Connection, kind: str, table: str, interval: timedelta) -> bool:
    proc, key, add, remove = {
        "retention": (
            "policy_retention",
            "drop_after",
            "add_retention_policy",
            "remove_retention_policy",
        ),
        "compression": (
            "policy_compression",
            "compress_after",
            "add_compression_policy",
            "remove_compression_policy",
        ),
    }[kind]
    if await _current_job_setting(conn, proc, table, key) == interval:
        return False
    async with conn.transaction():
        await conn.execute(f"SELECT {remove}($1::regclass, if_exists => true)", table)
        await conn.execute(f"SELECT {add}($1::regclass, $2::interval)", table, interval)
    log.info("policy set", kind=kind, table=table, interval=str(interval))
    return True


async def apply_timescale_policies(conn: asyncpg.Connection, retention: RetentionSettings) -> int:
    """Make the database's policies match the settings; returns how many changed."""
    changed = 0
    compress_after = timedelta(days=retention.compress_after_days)
    for table in COMPRESSED_TABLES:
        changed += await _set_policy(conn, "compression", table, compress_after)
    for rule in retention_rules(retention):
        changed += await _set_policy(conn, "retention", rule.table, rule.keep)
    return changed
