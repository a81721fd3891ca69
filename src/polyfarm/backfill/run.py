"""A backfill run: the windows still to do, fetched by a bounded set of workers, stored, and
marked done only once stored.

Price windows (one token, at most 15 days) go through ``HistoryFetcher``; their points are
buffered and stored in batches, each batch's windows recorded as done in the same flush, after
the points. Trade windows (up to ``markets_per_request`` markets sharing a window) walk the Data
API's v1 tape, are keyed like live fills (``polyfarm.stream.trades.repaired_trade_rows``: a
fill the stream saw is not stored twice) and written through the ``Writer``. A crash or Ctrl-C
loses at most the windows not yet flushed: they are asked again on the next run, and storing
them twice stores nothing twice.

Requests are paced by the rate limiter of the clients handed in; the workers only keep enough
requests in flight to use it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from polyfarm.backfill.fetch import HistoryFetcher
from polyfarm.backfill.markets import Subject
from polyfarm.backfill.plan import (
    DAY_S,
    GRAINS_S,
    RouteBalance,
    Span,
    life_span,
    minutes_in,
    todo_spans,
)
from polyfarm.clock import Clock
from polyfarm.errors import SourceError
from polyfarm.logs import get_logger
from polyfarm.polymarket.data_api import DataApiClient
from polyfarm.polymarket.domain import DataTrade
from polyfarm.store.history_writes import (
    HistoryBatch,
    Series,
    WindowDone,
    done_windows,
    record_windows,
    store_history_points,
)
from polyfarm.store.keys import TokenKeys
from polyfarm.store.rows import TRADES
from polyfarm.store.writing import Writer
from polyfarm.stream.trades import repaired_trade_rows

log = get_logger(__name__)

Progress = Callable[[int, int], None]  # windows done, windows in all
# A trade window is a day: the fills of up to ``markets_per_request`` markets in it are held in
# memory before they are keyed and written (a fortnight of the busiest markets would not fit).
TRADE_WINDOW_S = DAY_S


@dataclass(frozen=True)
class BackfillPlan:
    subjects: Sequence[Subject]
    start: datetime
    end: datetime
    prices: bool = True
    trades: bool = True
    grains: tuple[int, ...] = GRAINS_S


@dataclass(frozen=True)
class PriceJob:
    subject: Subject
    token_id: str
    window: Span


@dataclass(frozen=True)
class TradeJob:
    subjects: tuple[Subject, ...]
    window: Span


@dataclass
class Summary:
    """What a run did, for the closing report."""

    windows: int = 0  # done by this run
    already_done: int = 0  # tokens and markets with nothing left to do
    history_rows: int = 0
    trade_rows: int = 0
    requests: int = 0
    trade_requests: int = 0  # of which pages of the trade tape (a budget of their own)
    points_by_fidelity: Counter[int] = field(default_factory=Counter)
    missing_minutes: Counter[str] = field(default_factory=Counter)  # token → minutes unfilled
    failures: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        fidelity = ", ".join(
            f"{seconds // 60} min: {count:,}"
            for seconds, count in sorted(self.points_by_fidelity.items())
        )
        holes = sum(self.missing_minutes.values())
        return [
            f"windows fetched: {self.windows:,} (markets or tokens already done: "
            f"{self.already_done:,})",
            f"rows stored: price_history {self.history_rows:,}, trades {self.trade_rows:,}",
            f"fidelity obtained (points): {fidelity or 'none'}",
            f"holes the venue could not fill: {holes:,} minutes over "
            f"{len(self.missing_minutes):,} tokens",
            f"requests: {self.requests:,}; failed attempts: {len(self.failures):,}",
        ]


@dataclass
class _Buffer:
    batches: list[HistoryBatch] = field(default_factory=list)
    points: int = 0
    windows: list[WindowDone] = field(default_factory=list)


class Backfiller:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        fetcher: HistoryFetcher,
        data_api: DataApiClient,
        writer: Writer,
        clock: Clock,
        keys: TokenKeys | None = None,
        concurrency: int = 16,
        markets_per_request: int = 50,
        trade_settle_s: float = 120.0,
        flush_rows: int = 20_000,
        on_progress: Progress | None = None,
    ) -> None:
        self._pool = pool
        self._fetcher = fetcher
        self._data_api = data_api
        self._writer = writer
        self._clock = clock
        self._keys = keys or TokenKeys()
        self._concurrency = max(1, concurrency)
        self._markets_per_request = max(1, markets_per_request)
        self._trade_settle_s = trade_settle_s
        self._flush_rows = max(1, flush_rows)
        self._on_progress = on_progress
        self._buffer = _Buffer()
        self._flush_lock = asyncio.Lock()
        self._balance = RouteBalance()
        self._done = 0
        self._total = 0
        self.summary = Summary()

    async def run(self, plan: BackfillPlan) -> Summary:
        self.summary = summary = Summary()
        now_s = int(self._clock().timestamp())
        prices = await self.price_jobs(plan, now_s) if plan.prices else []
        trades = await self.trade_jobs(plan, now_s) if plan.trades else []
        self._total = len(prices) + len(trades)
        self._done = 0
        self._balance = RouteBalance(data_api_load=len(trades))
        self._report()
        sent_before = self._sent()
        jobs: Iterator[PriceJob | TradeJob] = iter([*prices, *trades])
        async with asyncio.TaskGroup() as group:
            for _ in range(min(self._concurrency, self._total)):
                group.create_task(self._worker(jobs, plan, now_s))
        await self._flush()
        summary.requests = self._sent() - sent_before
        return summary

    def _sent(self) -> int:
        """Requests sent so far by the clients this run uses (each client counted once)."""
        clients = {id(c.rest): c.rest for c in (*self._fetcher.clients, self._data_api)}
        return sum(rest.sent for rest in clients.values())

    # -- what is left to do ------------------------------------------------------------------

    async def price_jobs(self, plan: BackfillPlan, now_s: int) -> list[PriceJob]:
        tokens = [t for s in plan.subjects for t in s.token_ids]
        async with self._pool.acquire() as conn:
            done = _spans_by_subject(await done_windows(conn, Series.PRICES, tokens))
        wanted = (_epoch(plan.start), _epoch(plan.end))
        jobs: list[PriceJob] = []
        for subject in plan.subjects:
            life = life_span(wanted, subject.born_s, subject.closed_s, now_s)
            for token in subject.token_ids:
                windows = todo_spans(life, done.get(token, [])) if life else []
                self.summary.already_done += not windows
                jobs.extend(PriceJob(subject, token, window) for window in windows)
        return jobs

    async def trade_jobs(self, plan: BackfillPlan, now_s: int) -> list[TradeJob]:
        conditions = [s.condition_id for s in plan.subjects]
        async with self._pool.acquire() as conn:
            done = _spans_by_subject(await done_windows(conn, Series.TRADES, conditions))
        settled = int(now_s - self._trade_settle_s)
        by_windows: dict[tuple[Span, ...], list[Subject]] = {}
        # The whole range for every market (the tape has nothing before a market's birth), so
        # that markets share windows and go together, many to a request.
        wanted = (_epoch(plan.start), min(_epoch(plan.end), settled))
        for subject in plan.subjects:
            windows = tuple(todo_spans(wanted, done.get(subject.condition_id, []), TRADE_WINDOW_S))
            self.summary.already_done += not windows
            if windows:
                by_windows.setdefault(windows, []).append(subject)
        jobs: list[TradeJob] = []
        for windows, subjects in by_windows.items():
            size = self._markets_per_request
            for i in range(0, len(subjects), size):
                batch = tuple(subjects[i : i + size])
                jobs.extend(TradeJob(batch, window) for window in windows)
        return jobs

    # -- the work ----------------------------------------------------------------------------

    async def _worker(
        self, jobs: Iterator[PriceJob | TradeJob], plan: BackfillPlan, now_s: int
    ) -> None:
        for job in jobs:
            if isinstance(job, PriceJob):
                await self._price_window(job, plan, now_s)
            else:
                await self._trade_window(job)
            self._done += 1
            self.summary.windows += 1
            self._report()

    async def _price_window(self, job: PriceJob, plan: BackfillPlan, now_s: int) -> None:
        prefer = self._balance.choose(job.window, now_s)
        filled = await self._fetcher.fill(
            job.token_id, job.subject.market_id, job.window, now_s, prefer, plan.grains
        )
        summary = self.summary
        summary.failures.extend(filled.failures)
        for batch in filled.batches:
            summary.points_by_fidelity[batch.fidelity_s] += len(batch)
        missing = minutes_in(filled.missing)
        if missing:
            summary.missing_minutes[job.token_id] += missing
        buffer = self._buffer
        buffer.batches.extend(filled.batches)
        buffer.points += filled.points
        buffer.windows.append(
            WindowDone(
                Series.PRICES, job.token_id, _moment(job.window[0]), _moment(job.window[1]),
                filled.finest_s, filled.routes, filled.points, missing,
            )
        )  # fmt: skip
        if buffer.points >= self._flush_rows:
            await self._flush()

    async def _flush(self) -> None:
        async with self._flush_lock:
            buffer, self._buffer = self._buffer, _Buffer()
            if buffer.batches:
                self.summary.history_rows += await store_history_points(
                    self._pool, self._keys, buffer.batches
                )
            if buffer.windows:
                async with self._pool.acquire() as conn:
                    await record_windows(conn, buffer.windows)

    async def _trade_window(self, job: TradeJob) -> None:
        trades = await self._fetch_trades(job)
        if trades is None:
            return
        markets = {t: s.market_id for s in job.subjects for t in s.token_ids}
        rows = repaired_trade_rows(trades, markets, self._clock())
        result = await self._writer.write(TRADES, rows)
        self.summary.trade_rows += result.inserted
        per_market = Counter(row.market_id for row in rows)
        async with self._pool.acquire() as conn:
            await record_windows(
                conn,
                (
                    WindowDone(
                        Series.TRADES, s.condition_id, _moment(job.window[0]),
                        _moment(job.window[1]), rows=per_market[s.market_id],
                    )
                    for s in job.subjects
                ),
            )  # fmt: skip

    async def _fetch_trades(self, job: TradeJob) -> list[DataTrade] | None:
        """Every fill of the window's whole seconds, or None when the walk did not finish
        with every row readable (the window is then left to the next run)."""
        start, end = job.window
        trades: list[DataTrade] = []
        try:
            async for page in self._data_api.iter_trades(
                [s.condition_id for s in job.subjects],
                start=_moment(start),
                end=_moment(end - 1),  # both ends are inclusive seconds
                page_size=1_000,
            ):
                self.summary.trade_requests += 1
                if page.rejects:
                    self.summary.failures.append(f"{len(page.rejects)} unreadable trade rows")
                    return None
                trades.extend(page.items)
        except SourceError as exc:
            self.summary.failures.append(f"trades {start}..{end}: {exc}")
            log.warning("trade window left for the next run", error=repr(exc))
            return None
        return trades

    def _report(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self._done, self._total)


def _spans_by_subject(done: dict[tuple[str, datetime], datetime]) -> dict[str, list[Span]]:
    spans: dict[str, list[Span]] = {}
    for (subject, start), end in done.items():
        spans.setdefault(subject, []).append((_epoch(start), _epoch(end)))
    return spans


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
