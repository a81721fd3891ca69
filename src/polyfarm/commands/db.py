"""``polyfarm db …``: the embedded PostgreSQL lifecycle, migrations, schema and job status."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click
from rich import box
from rich.console import Console
from rich.table import Table

from polyfarm.commands.backup import db_backup, db_restore
from polyfarm.commands.common import run_async
from polyfarm.settings import Settings
from polyfarm.store.database import migrate_database, open_pool, resolve_target
from polyfarm.store.jobs import JobHealth, JobHealthReport, JobState
from polyfarm.store.status import SchemaStatus, schema_status


@click.group()
def db() -> None:
    """The database: embedded PostgreSQL lifecycle, migrations, schema status, backups."""


db.add_command(db_backup)
db.add_command(db_restore)


@db.command("start")
@click.pass_obj
def db_start(settings: Settings) -> None:
    """Start the embedded PostgreSQL (no-op when already running or when a URL is set)."""
    target = resolve_target(settings)
    if target.embedded is None:
        click.echo("POLYFARM_DATABASE_URL is set: nothing to start")
        return
    started = target.embedded.start()
    click.echo(f"{'started' if started else 'already running'}: {target.dsn}")


@db.command("stop")
@click.pass_obj
def db_stop(settings: Settings) -> None:
    """Stop the embedded PostgreSQL."""
    target = resolve_target(settings)
    if target.embedded is None:
        click.echo("POLYFARM_DATABASE_URL is set: the external server is not ours to stop")
        return
    click.echo("stopped" if target.embedded.stop() else "not running")


@db.command("url")
@click.pass_obj
def db_url(settings: Settings) -> None:
    """Print the DSN in use, so that psql "$(polyfarm db url)" works."""
    click.echo(resolve_target(settings).dsn)


@db.command("migrate")
@click.pass_obj
def db_migrate(settings: Settings) -> None:
    """Apply pending migrations (starts the embedded database if needed)."""

    async def go() -> None:
        async with open_pool(settings) as pool:
            report = await migrate_database(pool, settings)
        applied = ", ".join(report.applied) or "nothing to do"
        click.echo(f"flavor: {report.flavor.value}; applied: {applied}")

    run_async(go)


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def db_status(settings: Settings, as_json: bool) -> None:
    """Schema version, migrations, TimescaleDB features, table sizes and row estimates, and the
    health of TimescaleDB's background jobs (compression, retention, aggregate refreshes).

    Exits 1 when a background job's last run failed or a job is overdue (due more than 15
    minutes ago and not started), so that cron or a monitoring check can run it.
    """

    async def go() -> SchemaStatus:
        async with open_pool(settings) as pool, pool.acquire() as conn:
            return await schema_status(conn)

    status = run_async(go)
    if as_json:
        click.echo(json.dumps(status.as_dict(), default=str))
    else:
        print_schema_status(status, resolve_target(settings).description)
    if unhealthy := status.job_health.unhealthy:
        named = ", ".join(f"{job.job_id} ({job.state.value})" for job in unhealthy)
        click.echo(f"background jobs not healthy: {named}", err=True)
        sys.exit(1)


def print_schema_status(status: SchemaStatus, where: str) -> None:
    console = Console()
    console.print(f"[bold]database[/]: {where} (PostgreSQL {status.server_version})")
    tsdb = f"TimescaleDB {status.timescaledb}" if status.timescaledb else "not present"
    console.print(f"[bold]timescaledb[/]: {tsdb}; schema flavor: {status.flavor or 'none'}")
    console.print(
        f"[bold]schema version[/]: {status.schema_version}; applied {len(status.applied)}, "
        f"pending {len(status.pending)} {status.pending or ''}"
    )
    table = Table("table", "kind", "chunk", "compressed", "size", "rows (est.)")
    for info in status.tables:
        span = info.chunk_interval or ""
        table.add_row(
            info.name,
            info.kind,
            span if info.partitions is None else f"{span} ×{info.partitions}",
            "yes" if info.compression else "",
            _human_bytes(info.total_bytes),
            f"{info.row_estimate:,}",
        )
    console.print(table)
    kinds = {kind for _, kind in status.aggregates}
    console.print(f"[bold]aggregates[/]: {len(status.aggregates)} ({', '.join(sorted(kinds))})")
    if status.jobs:
        console.print(f"[bold]policies[/]: {len(status.jobs)} background jobs")
        for proc, target, config in status.jobs:
            console.print(f"  {proc} on {target}: {config}")
    print_job_health(console, status.job_health)


def print_job_health(console: Console, report: JobHealthReport) -> None:
    if not report.applicable:
        console.print(
            "[bold]background jobs[/]: not applicable (plain PostgreSQL: the maintenance task "
            "refreshes the aggregates, makes the day partitions and drops expired ones)"
        )
        return
    counts = ", ".join(f"{n} {state.value}" for state, n in report.counts().items())
    console.print(f"[bold]background jobs[/]: {len(report.jobs)} ({counts})")
    table = Table("job", box=box.SIMPLE_HEAD)
    for header in ("proc", "hypertable"):
        table.add_column(header, overflow="fold")  # narrow terminals break the names
    for header in ("state", "last run", "last success", "fails/runs"):
        table.add_column(header, no_wrap=True)
    for job in report.jobs:
        table.add_row(
            str(job.job_id),
            # TimescaleDB's own procedures by their short name: compression, retention, ...
            job.proc.removeprefix("_timescaledb_functions.").removeprefix("policy_"),
            job.hypertable or "",
            f"[{_STATE_STYLE[job.state]}]{job.state.value}[/]",
            _last_run(job, report.checked_at),
            _ago(job.last_success_at, report.checked_at),
            f"{job.total_failures:,}/{job.total_runs:,}",
        )
    console.print(table)
    # Only the failing jobs' errors: an old error of a job that works again would mislead.
    failing = [job for job in report.jobs if job.state is JobState.FAILING]
    if failing:
        console.print("[bold]latest errors[/]:")
    for job in failing:
        console.print(f"  job {job.job_id}: {_truncate(job.latest_error or 'not recorded')}")


_STATE_STYLE = {
    JobState.FAILING: "bold red",
    JobState.OVERDUE: "bold red",
    JobState.PAUSED: "yellow",
    JobState.OK: "green",
}
ERROR_CHARS = 200


def _last_run(job: JobHealth, now: datetime) -> str:
    """When it last started; whether that run failed is its state."""
    if job.last_run_succeeded is None and job.last_run_started_at is not None:
        return "running"
    return _ago(job.last_run_started_at, now)


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max((now - moment).total_seconds(), 0.0)
    for unit, size, up_to in (("s", 1, 120), ("m", 60, 120), ("h", 3600, 48)):
        if seconds < size * up_to:
            return f"{seconds // size:.0f}{unit} ago"
    return f"{seconds // 86400:.0f}d ago"


def _truncate(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"
