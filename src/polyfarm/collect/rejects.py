"""Where collectors send records a parser refused: logged, counted, quarantined."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from polyfarm.clock import Clock
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.polymarket.domain import Reject
from polyfarm.store.quarantine import quarantine_record, store_quarantined

log = get_logger(__name__)


class RejectSink:
    def __init__(self, pool: asyncpg.Pool, metrics: Metrics, clock: Clock) -> None:
        self._pool = pool
        self._metrics = metrics
        self._clock = clock
        self.total = 0

    async def add(self, source: str, rejects: Iterable[Reject]) -> int:
        now = self._clock()
        records = []
        for reject in rejects:
            log.warning(
                "record refused",
                source=source,
                reason=reject.reason,
                key=reject.key,
                raw=reject.raw[:2000].decode("utf-8", "replace"),
            )
            records.append(quarantine_record(source, reject.reason, reject.raw, now, reject.key))
        if not records:
            return 0
        self._metrics.parse_errors.labels(source).inc(len(records))
        self.total += len(records)
        async with self._pool.acquire() as conn:
            return await store_quarantined(conn, records)
