"""Metadata refresher: Gamma keyset scans of open events and markets → events, markets, tokens.

One cycle pages through ``/events/keyset`` (event rows: titles, tags, neg-risk groups) and
``/markets/keyset`` (the canonical market rows, with their raw payload), upserts all three
tables, and merges the scan into the catalogue, which reports new, closed and vanished markets
to the other collectors. From the second cycle on it also asks for markets closed since the
previous one: a market listed and closed in between is seen by no open-market scan, and the
stream must still repair its fills. A market that fails to parse is logged with its raw body
and skipped; it never blocks the rest of its page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import asyncpg

from polyfarm.clock import Clock
from polyfarm.collect.rejects import RejectSink
from polyfarm.errors import SourceError
from polyfarm.logs import get_logger
from polyfarm.markets.catalog import CatalogDiff, CatalogScan, MarketCatalog
from polyfarm.markets.records import event_record, market_record, token_records
from polyfarm.metrics import Metrics
from polyfarm.polymarket.domain import MarketInfo, ProtocolVersion
from polyfarm.polymarket.gamma import GammaClient
from polyfarm.runtime import CycleResult
from polyfarm.store.dimensions import (
    update_tiers,
    upsert_events,
    upsert_markets,
    upsert_tokens,
)

log = get_logger(__name__)


ProtocolKey = tuple[str, str]  # (v1 | v2, declared | absent)


def protocol_counts(markets: Iterable[MarketInfo]) -> Counter[ProtocolKey]:
    """How many markets chose their ids by which scheme, and how many declared no version
    (listed before Protocol V2: read as V1)."""
    return Counter(
        (
            (market.protocol_version or ProtocolVersion.V1).value,
            "absent" if market.declared_version is None else "declared",
        )
        for market in markets
    )


# -- the collector ------------------------------------------------------------------------------


FLUSH_MARKETS = 2_000  # markets held in memory before they are upserted
# Closed markets whose end date is this close to the previous scan, or later, are looked for
# too: a market listed and closed between two scans is seen by no open-market scan.
RECENTLY_CLOSED_MARGIN = timedelta(hours=1)


class MetadataCollector:
    """Streams the scan page by page: at most ``FLUSH_MARKETS`` markets are held at once, so
    the memory of a 20,000-market scan does not depend on the venue's size."""

    name = "metadata"

    def __init__(
        self,
        gamma: GammaClient,
        pool: asyncpg.Pool,
        catalog: MarketCatalog,
        clock: Clock,
        rejects: RejectSink,
        on_change: Callable[[CatalogDiff], None] | None = None,
        metrics: Metrics | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self._rejects = rejects
        self._metrics = metrics
        self._gamma = gamma
        self._pool = pool
        self._catalog = catalog
        self._clock = clock
        self._on_change = on_change
        self.last_diff = CatalogDiff()
        self._previous_scan_at: datetime | None = None
        # Called with the number of markets scanned so far (a progress display, if any).
        self._on_progress = on_progress

    async def cycle(self) -> CycleResult:
        now = self._clock()
        categories, rows = await self._scan_events(now)
        scan = self._catalog.start_scan()
        pending: list[MarketInfo] = []
        protocols: Counter[ProtocolKey] = Counter()
        async for page in self._gamma.iter_markets_keyset(limit=100, closed=False):
            await self._rejects.add("gamma_market", page.rejects)
            protocols.update(protocol_counts(page.items))
            self._catalog.add_scanned(scan, page.items, now)
            pending.extend(page.items)
            if self._on_progress is not None:
                self._on_progress(len(scan.seen))
            if len(pending) >= FLUSH_MARKETS:
                rows += await self._store_markets(pending, now, categories)
                pending = []
        rows += await self._store_markets(pending, now, categories)
        rows += await self._scan_recently_closed(scan, now, categories)
        diff = self._catalog.finish_scan(scan, now, complete=True)
        self._report_protocols(protocols)
        await self._after_scan(diff)
        return CycleResult(markets=len(scan.seen), rows=rows)

    def _report_protocols(self, counts: Counter[ProtocolKey]) -> None:
        log.info(
            "open markets by protocol",
            v1=counts["v1", "declared"] + counts["v1", "absent"],
            v2=counts["v2", "declared"],
            without_version=counts["v1", "absent"],
        )
        if self._metrics is not None:
            for protocol in ProtocolVersion:
                for field in ("declared", "absent"):
                    gauge = self._metrics.markets_by_protocol.labels(protocol.value, field)
                    gauge.set(counts[protocol.value, field])

    async def _scan_recently_closed(
        self, scan: CatalogScan, now: datetime, categories: dict[str, str]
    ) -> int:
        """Markets we never saw open that closed since the previous scan (listed and closed in
        between, their ``new_market`` announcement lost): into the catalogue and the database,
        so that the stream repairs their fills from the Data API."""
        since = self._previous_scan_at
        if since is None:  # the first scan: what closed before it is no concern of this process
            self._previous_scan_at = now
            return 0
        unseen: list[MarketInfo] = []
        try:
            async for page in self._gamma.iter_markets_keyset(
                limit=100, closed=True, end_date_min=since - RECENTLY_CLOSED_MARGIN
            ):
                await self._rejects.add("gamma_market", page.rejects)
                unseen += [m for m in page.items if m.market_id not in self._catalog.markets]
        except SourceError as exc:  # the open-market scan stands; the next cycle asks again
            log.warning(
                "recently closed markets not fetched", since=since.isoformat(), error=repr(exc)
            )
            return 0
        self._previous_scan_at = now
        if unseen:
            log.info("closed markets never seen open", markets=len(unseen))
            self._catalog.add_scanned(scan, unseen, now)
        return await self._store_markets(unseen, now, categories)

    async def _scan_events(self, now: datetime) -> tuple[dict[str, str], int]:
        """Upsert every open event; returns each event's category (first tag) for its markets."""
        categories: dict[str, str] = {}
        stored = 0
        async for page in self._gamma.iter_events_keyset(limit=100, closed=False):
            await self._rejects.add("gamma_event", page.rejects)
            for event in page.items:
                await self._rejects.add("gamma_market", event.market_rejects)
                if event.tags and event.tags[0].label:
                    categories[event.event_id] = event.tags[0].label
            async with self._pool.acquire() as conn:
                stored += await upsert_events(conn, [event_record(e, now) for e in page.items])
        return categories, stored

    async def _store_markets(
        self, markets: list[MarketInfo], now: datetime, categories: dict[str, str]
    ) -> int:
        if not markets:
            return 0
        tiers = self._catalog.tiers
        records = [market_record(m, now, tiers, categories) for m in markets]
        tokens = [t for m in markets for t in token_records(m)]
        async with self._pool.acquire() as conn:
            return await upsert_markets(conn, records) + await upsert_tokens(conn, tokens)

    async def _after_scan(self, diff: CatalogDiff) -> None:
        if diff.retiered:
            async with self._pool.acquire() as conn:
                await update_tiers(conn, list(diff.retiered))
        self.last_diff = diff
        if diff.new or diff.closed or diff.vanished:
            log.info(
                "markets changed",
                new=len(diff.new),
                closed=len(diff.closed),
                vanished=len(diff.vanished),
            )
        if self._on_change is not None:
            self._on_change(diff)
