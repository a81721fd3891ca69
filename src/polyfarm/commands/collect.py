"""``polyfarm collect``, ``polyfarm status`` and ``polyfarm stats``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from polyfarm.clock import utc_now
from polyfarm.commands.common import run_async
from polyfarm.daemon import run_daemon, run_daemon_once
from polyfarm.logs import get_logger
from polyfarm.runtime import Supervisor, install_signal_handlers
from polyfarm.settings import Settings
from polyfarm.store.database import open_pool
from polyfarm.store.ops import instances_seen
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
# `polyfarm status` names the collector instances that recorded anything this recently.
INSTANCES_WITHIN = timedelta(hours=1)


async def collect_once(settings: Settings, ws_seconds: float) -> tuple[Supervisor, bool]:
    with scan_progress() as on_progress:
        return await run_daemon_once(settings, ws_seconds, on_progress)


@contextlib.contextmanager
def scan_progress() -> Iterator[Callable[[int], None] | None]:
    """A live count of scanned markets during the metadata scan, on a terminal only."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,}"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("Gamma markets scanned", total=None)
        yield lambda scanned: progress.update(task, completed=scanned)


def print_cycle_summary(supervisor: Supervisor) -> None:
    table = Table("collector", "status", "seconds", "rows", "error")
    for name, state in supervisor.state.items():
        status = "ok" if state.cycles and not state.consecutive_failures else "FAILED"
        seconds = f"{state.last_duration_s:.2f}" if state.last_duration_s is not None else ""
        table.add_row(name, status, seconds, f"{state.rows:,}", state.last_error or "")
    Console().print(table)


async def collect_until_signalled(settings: Settings) -> None:
    stop = asyncio.Event()
    install_signal_handlers(stop)
    await run_daemon(settings, stop)


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
        run_async(lambda: collect_until_signalled(settings))
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

    async def go() -> tuple[list[TableStats], list[Staleness], list[str]]:
        now = utc_now()
        async with open_pool(settings) as pool, pool.acquire() as conn:
            return (
                await table_stats(conn),
                await staleness(conn, settings, now),
                await instances_seen(conn, now - INSTANCES_WITHIN),
            )

    tables, collectors, instances = run_async(go)
    stale = [c.collector for c in collectors if c.stale]
    if as_json:
        report = {
            "tables": stats_json(tables),
            "collectors": staleness_json(collectors),
            "instances": instances,
        }
        click.echo(json.dumps(report))
    else:
        click.echo(f"instances recording in the last hour: {', '.join(instances) or 'none'}")
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
