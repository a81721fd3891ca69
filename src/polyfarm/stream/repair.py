"""Gap repair: fills lost on the WebSocket are fetched from the Data API trade tape.

A lost window (a dropped or stalled connection, a restart, a market created before we
subscribed to it) is recorded in ``feed_gaps`` as soon as it is known, one row per market,
``repaired = false``. Once the window has ended and the Data API has had ``repair_delay_s`` to
index it, its fills are fetched (v1 ``/trades`` by condition id, whole seconds, each window
walked to the end), keyed exactly like live fills and written idempotently: fills the stream
did see are not stored twice. Only a walk that finished with every row readable proves the
window complete; then the rows flip to ``repaired = true``. Otherwise the window is retried
(``repair_attempts`` times, with growing pauses) and finally left unrepaired with the reason.
Unrepaired trade gaps of the last two days are taken up again after a restart.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

import asyncpg

from polyfarm.backoff import Backoff
from polyfarm.clock import Clock
from polyfarm.errors import SourceError
from polyfarm.logs import get_logger
from polyfarm.markets.catalog import MarketCatalog
from polyfarm.metrics import Metrics
from polyfarm.polymarket.data_api import DataApiClient
from polyfarm.polymarket.domain import DataTrade
from polyfarm.settings import WebSocketSettings
from polyfarm.store.rows import TRADES, TradeRow
from polyfarm.store.stream_writes import (
    GapRecord,
    close_gaps,
    insert_gaps,
    market_identities,
    open_trade_gaps,
)
from polyfarm.store.writing import Writer
from polyfarm.stream.trades import repaired_trade_rows

log = get_logger(__name__)

MarketIdentity = tuple[str, tuple[str, ...]]  # condition id, token ids
INBOX_MAX = 10_000
RELOAD_DAYS = 2
POLL_S = 0.2
RETRY = Backoff(base_s=2.0, max_s=600.0)


class GapCause(enum.Enum):
    """Why fills may be missing. The value begins the window's ``feed_gaps.reason``; a gap's
    ``detail`` follows it."""

    CONNECTION_LOST = "ws_"  # detail: how the session ended (ws_stall, ws_closed, …)
    UNREADABLE_FRAME = "ws_unreadable_frame"
    FILL_WITHOUT_SIDE = "ws fill without side"
    RESTART = "restart"  # the stream was down: from the last heartbeat to the first data
    CLOSED_WHILE_DOWN = "restart (closed meanwhile)"
    NEW_MARKET = "new market"  # from its listing or birth to its first snapshot
    SUBSCRIBED = "subscribed"  # added to a live connection: until its first snapshot
    NEVER_SUBSCRIBED = "new market never subscribed"
    QUEUE_FULL = "merged (queue full)"  # windows of different causes merged in a full inbox
    TAKEN_UP_AGAIN = ""  # an earlier run's unrepaired window: the detail is its stored reason


@dataclass(frozen=True)
class Gap:
    """Fills of ``markets`` between ``start`` and ``end`` (venue time) may be missing."""

    markets: tuple[str, ...]
    start: datetime
    end: datetime
    cause: GapCause
    detail: str = ""

    @property
    def reason(self) -> str:
        """As stored in ``feed_gaps``: the cause, then the detail."""
        return f"{self.cause.value}{self.detail}"

    def merged(self, other: Gap) -> Gap:
        markets = tuple(dict.fromkeys((*self.markets, *other.markets)))
        start, end = min(self.start, other.start), max(self.end, other.end)
        if (self.cause, self.detail) == (other.cause, other.detail):
            return Gap(markets, start, end, self.cause, self.detail)
        return Gap(markets, start, end, GapCause.QUEUE_FULL)


@dataclass(frozen=True)
class Unproven:
    """Why a window is not proven complete; ``final`` ones are not retried."""

    reason: str
    final: bool = False


@dataclass
class _Job:
    gap: Gap
    ids: list[int]
    attempts: int = 0
    not_before: float = 0.0  # monotonic time of the next try


@dataclass
class RepairStats:
    windows: int = 0
    repaired: int = 0
    unrepaired: int = 0
    trades_found: int = 0  # fills the stream had missed
    failures: list[str] = field(default_factory=list)


class GapRepairer:
    def __init__(
        self,
        *,
        data_api: DataApiClient,
        writer: Writer,
        pool: asyncpg.Pool,
        catalog: MarketCatalog,
        clock: Clock,
        settings: WebSocketSettings,
        on_rows: Callable[[list[TradeRow]], None],
        metrics: Metrics | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._data_api = data_api
        self._jitter = jitter
        self._writer = writer
        self._pool = pool
        self._catalog = catalog
        self._clock = clock
        self._settings = settings
        self._on_rows = on_rows
        self._metrics = metrics
        self._inbox: deque[Gap] = deque()
        self._jobs: list[_Job] = []
        self.stats = RepairStats()

    # -- intake (synchronous: called from the receive path) ------------------------------------

    def submit(self, gap: Gap) -> None:
        if not gap.markets:
            return
        if len(self._inbox) >= INBOX_MAX:
            gap = self._inbox.pop().merged(gap)
        self._inbox.append(gap)

    def earliest_unrecorded(self) -> datetime | None:
        """Start of the oldest lost window not yet in ``feed_gaps`` (for the heartbeat)."""
        return min((gap.start for gap in self._inbox), default=None)

    @property
    def idle(self) -> bool:
        return not self._inbox and not self._jobs

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, intake_done: asyncio.Event) -> None:
        """Repairs until ``stop``; then records what is still unrecorded once the intake has
        ended, windows closed by the connections' stop included, as known holes."""
        await self._reload()
        while not stop.is_set():
            await self._record_new()
            for job in self._ready():
                if stop.is_set():
                    break
                await self._attempt(job)
            await asyncio.sleep(POLL_S)
        await intake_done.wait()
        await self._record_new()

    async def _reload(self) -> None:
        since = self._clock() - timedelta(days=RELOAD_DAYS)
        async with self._pool.acquire() as conn:
            open_gaps = await open_trade_gaps(conn, since)
        for (start, end), rows in groupby(open_gaps, key=lambda g: (g.gap_start, g.gap_end)):
            found = list(rows)
            markets = tuple(g.market_id for g in found if g.market_id is not None)
            gap = Gap(markets, start, end, GapCause.TAKEN_UP_AGAIN, found[0].reason)
            self._jobs.append(_Job(gap, [g.id for g in found]))
        if open_gaps:
            log.info("unrepaired trade gaps taken up again", rows=len(open_gaps))

    async def _record_new(self) -> None:
        while self._inbox:
            gap = self._inbox[0]
            records = [
                GapRecord("ws_trades", None, market, gap.start, gap.end, gap.reason)
                for market in gap.markets
            ]
            async with self._pool.acquire() as conn:
                ids = await insert_gaps(conn, records)
            self._inbox.popleft()
            self._jobs.append(_Job(gap, ids))
            self.stats.windows += 1
            self._count("detected", len(ids))

    def _ready(self) -> list[_Job]:
        now, mono = self._clock(), time.monotonic()
        delay = timedelta(seconds=self._settings.repair_delay_s)
        ready = [j for j in self._jobs if j.gap.end + delay <= now and j.not_before <= mono]
        return sorted(ready, key=lambda j: j.gap.end)

    async def _attempt(self, job: _Job) -> None:
        log.info(
            "gap repair started",
            reason=job.gap.reason,
            markets=len(job.gap.markets),
            start=job.gap.start.isoformat(),
            end=job.gap.end.isoformat(),
        )
        problem = await self._repair(job.gap)
        if problem is None:
            await self._close(job, repaired=True)
            return
        job.attempts += 1
        if problem.final or job.attempts >= self._settings.repair_attempts:
            await self._close(job, repaired=False, note=problem.reason)
            return
        job.not_before = time.monotonic() + RETRY.delay(job.attempts, self._jitter())
        log.info("gap repair will be retried", problem=problem.reason, attempts=job.attempts)

    async def _close(self, job: _Job, *, repaired: bool, note: str | None = None) -> None:
        async with self._pool.acquire() as conn:
            await close_gaps(conn, job.ids, repaired=repaired, note=note)
        self._jobs.remove(job)
        if repaired:
            self.stats.repaired += 1
        else:
            self.stats.unrepaired += 1
            self.stats.failures.append(note or "")
            log.warning("gap left unrepaired", reason=job.gap.reason, problem=note)
        self._count("repaired" if repaired else "unrepaired", len(job.ids))

    def _count(self, outcome: str, amount: int) -> None:
        if self._metrics is not None:
            self._metrics.feed_gaps.labels("ws_trades", outcome).inc(amount)

    # -- one repair -----------------------------------------------------------------------------

    async def _repair(self, gap: Gap) -> Unproven | None:
        """Fetch and store the window's fills; why it is not proven complete, or None."""
        length = (gap.end - gap.start).total_seconds()
        if length > self._settings.repair_max_window_s:
            return Unproven(f"window of {length:.0f} s exceeds repair_max_window_s", final=True)
        markets = await self._identities(gap.markets)
        unknown = [m for m in gap.markets if m not in markets]
        if unknown:
            return Unproven(f"markets unknown to the database: {unknown[:5]}", final=True)
        size = self._settings.repair_markets_per_request
        ids = list(markets)
        for i in range(0, len(ids), size):
            problem = await self._repair_chunk({m: markets[m] for m in ids[i : i + size]}, gap)
            if problem is not None:
                return problem
        return None

    async def _identities(self, market_ids: Sequence[str]) -> dict[str, MarketIdentity]:
        """Condition and token ids: from the catalogue, else (a market closed and gone from
        it, e.g. across a restart) from the database."""
        catalog = self._catalog.markets
        found = {
            m: (catalog[m].condition_id, catalog[m].token_ids) for m in market_ids if m in catalog
        }
        missing = [m for m in market_ids if m not in found]
        if missing:
            async with self._pool.acquire() as conn:
                found.update(await market_identities(conn, missing))
        return found

    async def _repair_chunk(self, markets: dict[str, MarketIdentity], gap: Gap) -> Unproven | None:
        tokens = {token: market_id for market_id, (_, ids) in markets.items() for token in ids}
        trades: list[DataTrade] = []
        try:
            async for page in self._data_api.iter_trades(
                [condition for condition, _ in markets.values()], start=gap.start, end=gap.end
            ):
                if page.rejects:
                    return Unproven(f"{len(page.rejects)} unreadable Data API rows")
                trades.extend(page.items)
        except SourceError as exc:
            return Unproven(f"Data API: {exc}")
        rows = repaired_trade_rows(trades, tokens, self._clock())
        if rows:
            try:
                result = await self._writer.write(TRADES, rows)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                return Unproven(f"database: {exc!r}")
            self.stats.trades_found += result.inserted
            self._on_rows(rows)
        return None
