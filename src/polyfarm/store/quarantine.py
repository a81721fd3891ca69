"""The quarantine: where refused records go, with the reason, so nothing vanishes silently."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

import asyncpg

MAX_RAW_BYTES = 64 * 1024  # a pathological payload is kept truncated, not refused again
QUARANTINE_TABLE = "quarantine"


class QuarantineRecord(NamedTuple):
    received_at: datetime
    source: str
    reason: str
    record_key: str | None
    raw: bytes


def quarantine_record(
    source: str, reason: str, raw: bytes | str, at: datetime, key: str | None = None
) -> QuarantineRecord:
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else bytes(raw)
    return QuarantineRecord(at, source, reason[:1000], key, data[:MAX_RAW_BYTES])


async def store_quarantined(conn: asyncpg.Connection, records: Sequence[QuarantineRecord]) -> int:
    if not records:
        return 0
    await conn.copy_records_to_table(
        QUARANTINE_TABLE, records=records, columns=QuarantineRecord._fields
    )
    return len(records)


async def recent_quarantined(conn: asyncpg.Connection, limit: int = 100) -> list[QuarantineRecord]:
    rows = await conn.fetch(
        "SELECT received_at, source, reason, record_key, raw FROM quarantine "
        "ORDER BY received_at DESC LIMIT $1",
        limit,
    )
    return [QuarantineRecord(*r) for r in rows]


def count_by_source(records: Iterable[QuarantineRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record.source] = counts.get(record.source, 0) + 1
    return counts
