"""What the schema really is, and whether its background jobs work: the facts behind
``polyfarm db status``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg

from polyfarm.store.jobs import JobHealthReport, job_health
from polyfarm.store.migrations import (
    applied_migrations,
    default_migrations_dir,
    load_migrations,
    timescaledb_version,
)
from polyfarm.store.partitions import TABLES_BY_NAME

TABLES = (
    "events",
    "markets",
    "tokens",
    "market_resolutions",
    "token_keys",
    "price_points",
    "book_samples",
    "trade_fills",
    "book_changes",
    "feature_samples",
    "whale_events",
    "feed_gaps",
    "task_runs",
    "instance_health",
)


@dataclass(frozen=True)
class TableInfo:
    name: str
    kind: str  # hypertable | partitioned | table | missing
    total_bytes: int
    row_estimate: int
    chunk_interval: str | None = None  # of a hypertable's chunks, or a table's partitions
    compression: bool = False
    partitions: int | None = None  # of a partitioned table, the DEFAULT one included


@dataclass
class SchemaStatus:
    server_version: str
    flavor: str | None
    timescaledb: str | None
    schema_version: int | None
    applied: list[str]
    pending: list[str]
    job_health: JobHealthReport
    tables: list[TableInfo] = field(default_factory=list)
    aggregates: list[tuple[str, str]] = field(default_factory=list)  # (name, kind)
    jobs: list[tuple[str, str, str]] = field(default_factory=list)  # (proc, target, config)

    def as_dict(self) -> dict[str, object]:
        return {
            "server_version": self.server_version,
            "flavor": self.flavor,
            "timescaledb": self.timescaledb,
            "schema_version": self.schema_version,
            "applied": self.applied,
            "pending": self.pending,
            "tables": [t.__dict__ for t in self.tables],
            "aggregates": [{"name": n, "kind": k} for n, k in self.aggregates],
            "jobs": [{"proc": p, "target": t, "config": c} for p, t, c in self.jobs],
            "job_health": self.job_health.as_dict(),
        }


async def _plain_table_info(conn: asyncpg.Connection, name: str) -> TableInfo:
    # A partitioned table holds nothing itself: its size and rows are its partitions'.
    row = await conn.fetchrow(
        """
        SELECT c.relkind = 'p' AS partitioned,
               coalesce(sum(pg_total_relation_size(r.oid)), 0)::bigint AS bytes,
               coalesce(sum(greatest(r.reltuples, 0)), 0)::bigint AS est,
               count(*) FILTER (WHERE r.oid <> c.oid) AS partitions
        FROM pg_class c
        JOIN pg_class r ON r.oid = c.oid AND c.relkind <> 'p'
                        OR r.oid IN (SELECT relid FROM pg_partition_tree(c.oid) WHERE isleaf)
        WHERE c.oid = to_regclass($1)
        GROUP BY c.oid, c.relkind
        """,
        name,
    )
    if row is None:
        return TableInfo(name, "missing", 0, 0)
    if not row["partitioned"]:
        return TableInfo(name, "table", row["bytes"], row["est"])
    table = TABLES_BY_NAME.get(name)
    return TableInfo(
        name, "partitioned", row["bytes"], row["est"],
        chunk_interval=None if table is None else interval_text(table.span),
        partitions=row["partitions"],
    )  # fmt: skip


def interval_text(span: timedelta) -> str:
    """As PostgreSQL prints an interval of whole days or of hours (as a chunk's is shown)."""
    if span % timedelta(days=1) == timedelta(0):
        days = span.days
        return f"{days} day" if days == 1 else f"{days} days"
    return str(span).zfill(8)


async def _hypertable_info(conn: asyncpg.Connection, name: str) -> TableInfo | None:
    row = await conn.fetchrow(
        """
        SELECT h.compression_enabled,
               (SELECT d.time_interval::text FROM timescaledb_information.dimensions d
                 WHERE d.hypertable_name = h.hypertable_name LIMIT 1) AS chunk_interval,
               hypertable_size(format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass)
                 AS bytes,
               approximate_row_count(format('%I.%I', h.hypertable_schema, h.hypertable_name)
                 ::regclass) AS est
        FROM timescaledb_information.hypertables h WHERE h.hypertable_name = $1
        """,
        name,
    )
    if row is None:
        return None
    return TableInfo(
        name,
        "hypertable",
        row["bytes"] or 0,
        row["est"] or 0,
        row["chunk_interval"],
        row["compression_enabled"],
    )


async def _aggregates(conn: asyncpg.Connection, with_timescale: bool) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if with_timescale:
        rows = await conn.fetch(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates ORDER BY 1"
        )
        found += [(r["view_name"], "continuous aggregate") for r in rows]
    rows = await conn.fetch(
        "SELECT matviewname FROM pg_matviews WHERE schemaname = 'public' ORDER BY 1"
    )
    found += [(r["matviewname"], "materialized view") for r in rows]
    return found


async def _jobs(conn: asyncpg.Connection) -> list[tuple[str, str, str]]:
    rows = await conn.fetch(
        "SELECT proc_name, hypertable_name, config::text FROM timescaledb_information.jobs "
        "WHERE proc_name LIKE 'policy_%' AND hypertable_name IS NOT NULL "
        "ORDER BY hypertable_name, proc_name"
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def schema_status(
    conn: asyncpg.Connection, migrations_dir: Path | None = None
) -> SchemaStatus:
    applied = await applied_migrations(conn)
    files = load_migrations(migrations_dir or default_migrations_dir())
    done = {a.version for a in applied}
    tsdb = await timescaledb_version(conn)
    status = SchemaStatus(
        server_version=await conn.fetchval("SHOW server_version"),
        flavor=applied[0].flavor if applied else None,
        timescaledb=tsdb,
        schema_version=max(done) if done else None,
        applied=[f"{a.version:04d}_{a.name}" for a in applied],
        pending=[m.filename for m in files if m.version not in done],
        job_health=await job_health(conn),
    )
    for name in TABLES:
        info = await _hypertable_info(conn, name) if tsdb else None
        status.tables.append(info or await _plain_table_info(conn, name))
    status.aggregates = await _aggregates(conn, bool(tsdb))
    if tsdb:
        status.jobs = await _jobs(conn)
    return status
