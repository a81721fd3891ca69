"""``polyfarm collect``, ``polyfarm status`` and ``polyfarm stats``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator

import asyncpg
import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from polyfarm.clock import Clock, utc_now
from polyfarm.collect.app import Collection, open_collection
from polyfarm.commands.common import run_async
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.metrics_http import metrics_service
from polyfarm.runtime import (
    Supervisor,
    install_signal_handlers,
    run_until_stopped,
)
from polyfarm.settings import Settings
from polyfarm.store.database import migrate_database, open_pool
from polyfarm.store.ops import mark_interrupted_runs
from polyfarm.store.stats import (
    Staleness,
    TableStats,
    human_age,
    staleness,
    staleness_json,
    stats_json,
    table_stats,
)

log = get_logger(__name__)
SHUTDOWN_DEADLINE_S = 30.0


async def prepare(pool: asyncpg.Pool, settings: Settings, clock: Clock) -> None:
    """Migrate, and close the task runs a crashed predecessor left 'running'."""
    await migrate_database(pool, settings)
    async with pool.acquire() as conn:
        interrupted = await mark_interrupted_runs(conn, clock())
    if interrupted:
        log.warning("closed task runs left open by an earlier process", count=interrupted)


async def collect_forever(
    settings: Settings, stop: asyncio.Event | None = None, metrics: Metrics | None = None
) -> None:
    stop = stop or asyncio.Event()
    install_signal_handlers(stop)
    async with open_pool(settings) as pool:
        await prepare(pool, settings, utc_now)
        async with open_collection(settings, pool, metrics=metrics) as collection:
            endpoint = metrics_service(settings, collection.metrics)
            supervisor = Supervisor(
                pool,
                collection.jobs(),
                [*collection.services, *([endpoint] if endpoint else [])],
                health_interval_s=settings.intervals.health_log_s,
                metrics=collection.metrics,
                extra_health=collection.health_extras,
            )
            log.info("collector started", jobs=[j.name for j in supervisor.jobs])
            await run_until_stopped(supervisor, stop, SHUTDOWN_DEADLINE_S)
    log.info("collector stopped")


async def collect_once(settings: Settings, ws_seconds: float) -> tuple[Supervisor, bool]:
    """One recorded cycle of every collector, in order; True when all succeeded."""
    async with open_pool(settings) as pool:
        await prepare(pool, settings, utc_now)
        async with open_collection(settings, pool) as collection:
            supervisor = Supervisor(
                pool, collection.jobs(), collection.services, metrics=collection.metrics
            )
            await collection.writer.replay()  # what an earlier run left in the journal
            ok = True
            for job in supervisor.jobs:
                with scan_progress(collection, job.name):
                    ok = await supervisor.run_once(job) and ok
            await run_services_for(collection, supervisor, ws_seconds)
            await collection.writer.replay()
    return supervisor, ok


@contextlib.contextmanager
def scan_progress(collection: Collection, job_name: str) -> Iterator[None]:
    """A live count of scanned markets during the metadata scan, on a terminal only."""
    if job_name != collection.metadata.name or not sys.stderr.isatty():
        yield
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,}"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("scanning Gamma markets", total=None)
        collection.metadata.on_progress = lambda n: progress.update(task, completed=n)
        try:
            yield
        finally:
            collection.metadata.on_progress = None


async def run_services_for(collection: Collection, supervisor: Supervisor, seconds: float) -> None:
    if not collection.services or seconds <= 0:
        return
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        for service in collection.services:
            group.create_task(service.run(stop))
        await asyncio.sleep(seconds)
        stop.set()


def print_cycle_summary(supervisor: Supervisor) -> None:
    table = Table("collector", "status", "seconds", "rows", "error")
    for name, state in supervisor.state.items():
        status = "ok" if state.cycles and not state.consecutive_failures else "FAILED"
        seconds = f"{state.last_duration_s:.2f}" if state.last_duration_s is not None else ""
        table.add_row(name, status, seconds, f"{state.rows:,}", state.last_error or "")
    Console().print(table)


@click.command()
@click.option("--once", is_flag=True, help="One cycle of each collector, then a summary.")
@click.option(
    "--ws-seconds",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0),
    help="With --once: how long the WebSocket stream listens.",
)
@click.pass_obj
def collect(settings: Settings, once: bool, ws_seconds: float) -> None:
    """Run the collection daemon (until SIGINT/SIGTERM), or one cycle with --once."""
    if not once:
        run_async(lambda: collect_forever(settings))
        return
    supervisor, ok = run_async(lambda: collect_once(settings, ws_seconds))
    print_cycle_summary(supervisor)
    if not ok:
        sys.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def status(settings: Settings, as_json: bool) -> None:
    """Last write per table and collector; exits 1 when any collector is stale."""

    async def go() -> tuple[list[TableStats], list[Staleness]]:
        async with open_pool(settings) as pool, pool.acquire() as conn:
            return await table_stats(conn), await staleness(conn, settings, utc_now())

    tables, collectors = run_async(go)
    stale = [c.collector for c in collectors if c.stale]
    if as_json:
        click.echo(
            json.dumps({"tables": stats_json(tables), "collectors": staleness_json(collectors)})
        )
    else:
        console = Console()
        table = Table("collector", "last success", "age", "allowed", "state")
        for c in collectors:
            last = c.last_success_at.isoformat(timespec="seconds") if c.last_success_at else "-"
            state = "[red]STALE[/]" if c.stale else "[green]ok[/]"
            table.add_row(c.collector, last, human_age(c.age_s), human_age(c.allowed_s), state)
        console.print(table)
        writes = Table("table", "rows", "last write")
        for t in tables:
            writes.add_row(
                t.table, f"{t.rows:,}", t.latest.isoformat(timespec="seconds") if t.latest else "-"
            )
        console.print(writes)
    if stale:
        click.echo(f"stale: {', '.join(stale)}", err=True)
        sys.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def stats(settings: Settings, as_json: bool) -> None:
    """Row counts and latest timestamps per table."""

    async def go() -> list[TableStats]:
        async with open_pool(settings) as pool, pool.acquire() as conn:
            return await table_stats(conn)

    tables = run_async(go)
    if as_json:
        click.echo(json.dumps(stats_json(tables)))
        return
    table = Table("table", "rows", "latest")
    for t in tables:
        table.add_row(
            t.table, f"{t.rows:,}", t.latest.isoformat(timespec="seconds") if t.latest else "-"
        )
    Console().print(table)
