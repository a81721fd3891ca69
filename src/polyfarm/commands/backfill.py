"""``polyfarm backfill``: what the venue still serves of chosen markets' past, into the
database (price history at the finest grain served, the trade tape), resumable.

Progress is a bar with an ETA on a terminal, a log line every ``LOG_EVERY_S`` otherwise. A run
interrupted (Ctrl-C, a crash) keeps what it stored and what it recorded as done; the same
command resumes it.

Rate limits are per process, and the venue's are per client: when a collector is running
against the same database (its heartbeat in ``collector_health`` is fresh), the backfill takes
only what the collector leaves of each documented limit, unless ``--rate-fraction`` says
otherwise.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from polyfarm.backfill.dimensions import store_dimensions
from polyfarm.backfill.fetch import HistoryFetcher
from polyfarm.backfill.markets import Selection, chosen_markets, subject_of
from polyfarm.backfill.run import Backfiller, BackfillPlan, Summary
from polyfarm.clock import utc_now
from polyfarm.commands.common import run_async
from polyfarm.daemon import open_clients, prepare
from polyfarm.logs import get_logger
from polyfarm.settings import Settings
from polyfarm.store.database import open_pool
from polyfarm.store.writer import BulkWriter

log = get_logger(__name__)

_TIME = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"])
LOG_EVERY_S = 30.0
COLLECTOR_FRESH = timedelta(minutes=3)
MIN_FRACTION = 0.05
OnProgress = Callable[[int, int], None]


def eta_s(done: int, total: int, elapsed_s: float) -> float | None:
    """Seconds left at the pace so far; None before the first window is done."""
    if done <= 0 or elapsed_s <= 0:
        return None
    return (total - done) * elapsed_s / done


@contextlib.contextmanager
def progress_reporter() -> Iterator[OnProgress]:
    """A bar with an ETA on a terminal; a log line every ``LOG_EVERY_S`` otherwise."""
    if sys.stderr.isatty():
        columns = (TextColumn("backfill"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("windows, ETA"), TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("backfill", total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)
        return
    yield ProgressLog(time.monotonic())


@dataclass
class ProgressLog:
    """Progress as a log line every ``LOG_EVERY_S`` (and at the end), with the ETA."""

    began: float
    last: float = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < LOG_EVERY_S and done != total:
            return
        self.last = now
        left = eta_s(done, total, now - self.began)
        log.info("backfill progress", done=done, total=total,
                 eta_s=None if left is None else round(left))  # fmt: skip


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


@click.command("backfill")
@click.option("--market", "market_ids", multiple=True, help="a Gamma market id; repeatable")
@click.option("--slug", "slugs", multiple=True, help="a market slug; repeatable")
@click.option("--event", "events", multiple=True, help="an event id or slug; repeatable")
@click.option("--tag", "tags", multiple=True, help="a tag id (its open markets); repeatable")
@click.option("--all-open", is_flag=True, help="every open market")
@click.option("--resolved-since", type=_TIME, help="every market resolved since (UTC)")
@click.option("--from", "start", type=_TIME, help="UTC, inclusive; default: --days before --to")
@click.option("--to", "end", type=_TIME, help="UTC, exclusive; default: now")
@click.option("--days", type=click.IntRange(1, 36_500), default=7, show_default=True)
@click.option("--no-prices", is_flag=True, help="only the trade tape")
@click.option("--no-trades", is_flag=True, help="only the price history")
@click.option("--rate-fraction", type=click.FloatRange(0.01, 1.0),
              help="share of each documented limit; default: rate_limits.fraction")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="the summary as one JSON object")
@click.pass_obj
def backfill(
    settings: Settings,
    market_ids: tuple[str, ...],
    slugs: tuple[str, ...],
    events: tuple[str, ...],
    tags: tuple[str, ...],
    all_open: bool,
    resolved_since: datetime | None,
    start: datetime | None,
    end: datetime | None,
    days: int,
    no_prices: bool,
    no_trades: bool,
    rate_fraction: float | None,
    as_json: bool,
) -> None:
    """Fetch chosen markets' price history (1 minute where still served, coarser where not)
    and trade tape for a time range; resumable and idempotent."""
    selection = Selection(market_ids, slugs, events, tags, all_open, _utc(resolved_since))
    if selection.empty:
        raise click.UsageError(
            "choose markets: --market, --slug, --event, --tag, --all-open or --resolved-since"
        )
    upper = _utc(end) or utc_now()
    lower = _utc(start) or upper - timedelta(days=days)
    if lower >= upper:
        raise click.UsageError("--from must be before --to")
    try:
        summary = run_async(
            lambda: run_backfill(
                settings, selection, lower, upper, not no_prices, not no_trades, rate_fraction
            )
        )
    except KeyboardInterrupt:
        click.echo("interrupted: what was stored is kept; run the same command to resume", err=True)
        raise SystemExit(130) from None
    if as_json:
        click.echo(json.dumps(summary_json(summary)))
    else:
        for line in summary.lines():
            click.echo(line)


async def run_backfill(
    settings: Settings,
    selection: Selection,
    start: datetime,
    end: datetime,
    prices: bool,
    trades: bool,
    rate_fraction: float | None = None,
) -> Summary:
    async with open_pool(settings) as pool:
        await prepare(pool, settings, utc_now)
        async with pool.acquire() as conn:
            beside = await collector_running(conn, utc_now())
        fraction = rate_fraction or (leftover_fraction(settings) if beside else None)
        if fraction is not None:
            log.info("rate limits", fraction=fraction, collector_running=beside)
            limits = settings.rate_limits.model_copy(update={"fraction": fraction})
            settings = settings.model_copy(update={"rate_limits": limits})
        async with open_clients(settings) as clients:
            markets = await chosen_markets(clients.gamma, selection)
            await store_dimensions(clients.gamma, pool, markets, utc_now(), settings.tiers)
            subjects = [s for s in map(subject_of, markets) if s is not None]
            log.info("markets chosen", markets=len(subjects), start=start.isoformat(),
                     end=end.isoformat())  # fmt: skip
            with progress_reporter() as on_progress:
                backfiller = Backfiller(
                    pool=pool,
                    fetcher=HistoryFetcher(clients.clob, clients.data_api),
                    data_api=clients.data_api,
                    writer=BulkWriter(pool),
                    clock=utc_now,
                    concurrency=settings.backfill.concurrency,
                    markets_per_request=settings.backfill.markets_per_request,
                    trade_settle_s=settings.websocket.repair_delay_s,
                    on_progress=on_progress,
                )
                plan = BackfillPlan(subjects, start, end, prices=prices, trades=trades)
                return await backfiller.run(plan)


async def collector_running(conn: asyncpg.Connection, now: datetime) -> bool:
    """Whether a collector wrote its heartbeat lately (it then uses its share of the limits)."""
    newest = await conn.fetchval("SELECT max(updated_at) FROM collector_health")
    return newest is not None and now - newest < COLLECTOR_FRESH


def leftover_fraction(settings: Settings) -> float:
    """What a collector running at the same time leaves of each documented limit: its live
    collectors' share and its background share taken (at least ``MIN_FRACTION``)."""
    taken = settings.rate_limits.fraction + settings.backfill.background_rate_fraction
    return max(MIN_FRACTION, round(1.0 - taken, 3))


def summary_json(summary: Summary) -> dict[str, object]:
    return {
        "windows": summary.windows,
        "already_done": summary.already_done,
        "rows": {"price_history": summary.history_rows, "trades": summary.trade_rows},
        "points_by_fidelity_s": {str(k): v for k, v in sorted(summary.points_by_fidelity.items())},
        "missing_minutes": sum(summary.missing_minutes.values()),
        "tokens_with_holes": len(summary.missing_minutes),
        "requests": summary.requests,
        "failed_attempts": len(summary.failures),
    }
