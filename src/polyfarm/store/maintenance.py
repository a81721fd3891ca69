"""Housekeeping for plain PostgreSQL, where TimescaleDB's background jobs do not exist.

Expires raw rows past their retention (whole partitions dropped, the rest deleted:
``polyfarm.store.partitions``), makes the partitions of the days ahead (and retires a DEFAULT
partition), rewrites finished days of price snapshots in token order
(``polyfarm.store.sealing``), and refreshes the aggregate materialized views (each from the
one below it, so in order). On a schema built on TimescaleDB chunks and policies do all that
and this does nothing but trim the operations log; a schema built on plain PostgreSQL keeps
this housekeeping even if TimescaleDB is installed later (its tables stay plain).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from polyfarm.logs import get_logger
from polyfarm.settings import RetentionSettings
from polyfarm.store.migrations import Flavor, schema_flavor, schema_lock
from polyfarm.store.partitions import UpkeepReport, ensure_partitions, expire_rows
from polyfarm.store.policies import retention_rules
from polyfarm.store.sealing import seal_finished_days

log = get_logger(__name__)

# The aggregates that hold rows (the public candles_* and trade_volume_1h are views over them,
# candles_1m over the raw rows). Refresh order matters: every candle aggregate but the first
# reads the one before it.
AGGREGATE_VIEWS = (
    "price_candles_5m",
    "price_candles_15m",
    "price_candles_1h",
    "price_candles_4h",
    "price_candles_1d",
    "trade_flow_1h",
)


@dataclass
class MaintenanceReport:
    refreshed: list[str] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)  # rows, dropped partitions' included
    partitions: UpkeepReport = field(default_factory=UpkeepReport)
    sealed: list[str] = field(default_factory=list)  # days rewritten in token order


async def refresh_aggregates(conn: asyncpg.Connection) -> list[str]:
    """Refresh the plain materialized views; a no-op list on TimescaleDB."""
    if await schema_flavor(conn) is Flavor.TIMESCALEDB:
        return []
    populated = dict(
        await conn.fetch(
            "SELECT matviewname, ispopulated FROM pg_matviews WHERE schemaname = 'public'"
        )
    )
    refreshed = []
    for view in AGGREGATE_VIEWS:
        # The first refresh cannot be CONCURRENTLY; later ones are, so readers never block.
        mode = "CONCURRENTLY " if populated.get(view) else ""
        await conn.execute(f"REFRESH MATERIALIZED VIEW {mode}{view}")
        refreshed.append(view)
    return refreshed


async def apply_retention(
    conn: asyncpg.Connection, retention: RetentionSettings, now: datetime
) -> dict[str, int]:
    """Rows past retention, per public table: expired partitions dropped, other old rows
    deleted (plain PostgreSQL); the task-run log trimmed (both flavours)."""
    deleted: dict[str, int] = {}
    if await schema_flavor(conn) is not Flavor.TIMESCALEDB:
        for rule in retention_rules(retention):
            expiry = await expire_rows(conn, rule, now, retention.archive_before_drop)
            deleted[rule.name] = expiry.rows
    status = await conn.execute(
        "DELETE FROM task_runs WHERE started_at < $1",
        now - timedelta(days=retention.task_runs_days),
    )
    deleted["task_runs"] = int(status.rsplit(" ", 1)[-1])
    return deleted


async def run_maintenance(
    conn: asyncpg.Connection, retention: RetentionSettings, now: datetime
) -> MaintenanceReport:
    report = MaintenanceReport()
    # Partitions are dropped and made under the schema lock: never beside another instance
    # that is migrating or making the same partitions as it starts.
    async with schema_lock(conn):
        report.deleted = await apply_retention(conn, retention, now)
        # After retention, so that a DEFAULT partition's expired rows are gone, not moved.
        report.partitions = await ensure_partitions(conn, now, retention)
    if retention.seal_finished_days:
        # Outside the schema lock: a venue day takes minutes to rewrite, and another instance
        # starting meanwhile must not wait for it to migrate.
        report.sealed = (await seal_finished_days(conn, now)).sealed
    report.refreshed = await refresh_aggregates(conn)
    log.info(
        "maintenance done",
        refreshed=len(report.refreshed),
        deleted=report.deleted,
        partitions_made=len(report.partitions.created),
        days_sealed=len(report.sealed),
    )
    return report
