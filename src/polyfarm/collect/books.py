"""Order-book snapshots: every active token every 5 minutes, near-close tiers at their tier's
cadence (T2 60 s, T3 30 s, T4 15 s by default).

The collector ticks at the fastest cadence and fetches only the tokens that are due, with
``POST /books`` in batches of 500. Each snapshot stores the top N levels per side as JSONB
(best first) and the statistics of ``book_stats``, stamped with the start of the token's
cadence slot. A snapshot equal to the token's previous one is not written again
(``markets.unchanged``); a token the stream takes over, or that leaves the catalogue, is
forgotten. Under disk pressure (``DiskPressure.slows_far_snapshots``) the far-from-close tiers'
cadences stretch as the stream's do (``markets.tiers.slowed_cadence_s``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from polyfarm.clock import Clock
from polyfarm.collect.rejects import RejectSink
from polyfarm.logs import get_logger
from polyfarm.markets.catalog import MarketCatalog
from polyfarm.markets.snapshots import book_digest, snapshot_row
from polyfarm.markets.tiers import aligned, book_cadence_s, cadence_s, slowed_cadence_s
from polyfarm.markets.tracked import TrackedMarket
from polyfarm.markets.unchanged import LastWritten
from polyfarm.polymarket.clob import ClobClient
from polyfarm.runtime import CycleResult
from polyfarm.settings import Settings
from polyfarm.store.disk import PressureReading
from polyfarm.store.rows import ORDERBOOK_SNAPSHOTS
from polyfarm.store.writing import Writer

log = get_logger(__name__)

CHUNK_TOKENS = 2_000
SCAN_BATCH = 2_000  # active tokens checked between two yields to the event loop


class BookCollector:
    name = "orderbooks"

    def __init__(
        self,
        clob: ClobClient,
        writer: Writer,
        catalog: MarketCatalog,
        clock: Clock,
        settings: Settings,
        rejects: RejectSink,
        covered: Callable[[str], bool],
        disk: PressureReading,
    ) -> None:
        self._rejects = rejects
        self._disk = disk
        self._clob = clob
        self._writer = writer
        self._catalog = catalog
        self._clock = clock
        self._settings = settings
        self._last_slot: dict[str, datetime] = {}
        unchanged = settings.unchanged
        self._last_written = LastWritten(
            book_digest, skip=unchanged.skip, keyframe_s=unchanged.keyframe_s
        )
        # Tokens whose live WebSocket book the stream snapshots itself, at the same cadence.
        self._covered = covered

    @property
    def tick_s(self) -> float:
        """How often the collector looks for due tokens: the fastest cadence it serves."""
        fast = [cadence_s(t, self._settings.tiers) for t in self._settings.tiers.orderbook_tiers]
        return min([self._settings.intervals.orderbooks_s, *fast])

    def cadence_for(self, market: TrackedMarket, slowed: bool = False) -> float:
        """The market's book cadence; ``slowed``: as the disk budget stretches it."""
        settings = self._settings
        cadence = book_cadence_s(market.tier, settings.tiers, settings.intervals.orderbooks_s)
        return slowed_cadence_s(cadence, market.tier, settings.storage) if slowed else cadence

    @property
    def unchanged_skipped(self) -> int:
        """Snapshots not written because they equalled the token's previous one."""
        return self._last_written.skipped

    async def due(self, now: datetime) -> list[tuple[str, TrackedMarket, datetime]]:
        """The tokens this collector serves whose slot has changed, with that slot. The walk
        covers every active token (40,000 at the venue) every tick, so it lets the event loop
        run every ``SCAN_BATCH`` tokens."""
        due = []
        served: set[str] = set()
        slowed = self._disk.pressure().slows_far_snapshots
        for i, (token, market) in enumerate(self._catalog.active_tokens()):
            if i and i % SCAN_BATCH == 0:
                await asyncio.sleep(0)
            if self._covered(token):
                continue
            served.add(token)
            slot = aligned(now, self.cadence_for(market, slowed))
            if self._last_slot.get(token) != slot:
                due.append((token, market, slot))
        self._last_written.keep_only(served)
        return due

    async def cycle(self) -> CycleResult:
        due = await self.due(self._clock())
        rows = 0
        # A chunk at a time: 40,000 parsed books at once would hold ~1.6 M Decimal levels.
        for start in range(0, len(due), CHUNK_TOKENS):
            rows += await self._fetch_and_store(due[start : start + CHUNK_TOKENS])
        return CycleResult(markets=len({m.market_id for _, m, _ in due}), rows=rows)

    async def _fetch_and_store(self, due: list[tuple[str, TrackedMarket, datetime]]) -> int:
        books = await self._clob.get_books([token for token, _, _ in due])
        await self._rejects.add("clob_book", books.rejects)
        snapshots = [
            snapshot_row(
                slot,
                books.items[token],
                market,
                depth=self._settings.orderbook.depth,
                wall_multiple=self._settings.orderbook.wall_multiple,
            )
            for token, market, slot in due
            if token in books.items
        ]
        rows = [row for row in snapshots if self._last_written.due(row)]
        result = await self._writer.write(ORDERBOOK_SNAPSHOTS, rows)
        self._last_written.remember(rows)
        for token, _, slot in due:
            if token in books.items:
                self._last_slot[token] = slot
        return result.inserted
