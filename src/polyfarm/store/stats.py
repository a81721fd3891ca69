"""Row counts and freshness per table: ``polyfarm stats`` and the staleness check."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import asyncpg

from polyfarm.settings import Settings
from polyfarm.store.ops import collector_health

# The column that tells when a table was last written.
TABLE_TIME_COLUMNS: dict[str, str | None] = {
    "events": "updated_at",
    "markets": "updated_at",
    "tokens": None,
    "market_resolutions": "detected_at",
    "price_snapshots": "ts",
    "orderbook_snapshots": "ts",
    "trades": "ts",
    "book_deltas": "ts",
    "market_features": "ts",
    "price_history": "fetched_at",  # the venue's own history, backfilled
    "backfill_progress": "done_at",
    "whale_events": "ts",
    "feed_gaps": "detected_at",
    "task_runs": "started_at",
    "collector_health": "updated_at",
}


@dataclass(frozen=True)
class TableStats:
    table: str
    rows: int
    latest: datetime | None


@dataclass(frozen=True)
class Staleness:
    collector: str
    last_success_at: datetime | None
    allowed_s: float
    age_s: float | None
    stale: bool


async def table_stats(conn: asyncpg.Connection) -> list[TableStats]:
    result = []
    for table, column in TABLE_TIME_COLUMNS.items():
        latest = f"max({column})" if column else "NULL::timestamptz"
        row = await conn.fetchrow(
            f"SELECT count(*) AS rows, {latest} AS latest FROM {table}"  # noqa: S608 - fixed names
        )
        result.append(TableStats(table, row["rows"], row["latest"]))
    return result


def stats_json(stats: list[TableStats]) -> dict[str, dict[str, object]]:
    return {
        s.table: {"rows": s.rows, "latest": s.latest.isoformat() if s.latest else None}
        for s in stats
    }


def collector_intervals(settings: Settings) -> dict[str, float]:
    intervals = settings.intervals
    return {
        "metadata": intervals.metadata_s,
        "prices": intervals.prices_s,
        "orderbooks": intervals.orderbooks_s,
        "resolutions": intervals.resolutions_s,
        "maintenance": intervals.maintenance_s,
    }


async def staleness(conn: asyncpg.Connection, settings: Settings, now: datetime) -> list[Staleness]:
    """A collector is stale when it has not succeeded for three of its intervals (plus a
    minute of grace), or never has."""
    health = {h.collector: h for h in await collector_health(conn)}
    report = []
    for collector, interval in collector_intervals(settings).items():
        allowed = 3 * interval + 60
        last = health[collector].last_success_at if collector in health else None
        age = None if last is None else (now - last).total_seconds()
        report.append(Staleness(collector, last, allowed, age, age is None or age > allowed))
    return report


def staleness_json(report: list[Staleness]) -> list[dict[str, object]]:
    return [
        {
            **asdict(s),
            "last_success_at": s.last_success_at.isoformat() if s.last_success_at else None,
        }
        for s in report
    ]


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return str(timedelta(seconds=int(seconds)))
