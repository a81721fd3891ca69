"""``polyfarm db …``: the embedded PostgreSQL lifecycle, migrations and schema status."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from polyfarm.commands.common import run_async
from polyfarm.settings import Settings
from polyfarm.store.database import migrate_database, open_pool, resolve_target
from polyfarm.store.status import SchemaStatus, schema_status


@click.group()
def db() -> None:
    """The database: embedded PostgreSQL lifecycle, migrations, schema status."""


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
    """Schema version, migrations, TimescaleDB features, table sizes and row estimates."""

    async def go() -> SchemaStatus:
        async with open_pool(settings) as pool, pool.acquire() as conn:
            return await schema_status(conn)

    status = run_async(go)
    if as_json:
        click.echo(json.dumps(status.as_dict(), default=str))
    else:
        print_schema_status(status, resolve_target(settings).description)


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
        table.add_row(
            info.name,
            info.kind,
            info.chunk_interval or "",
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


def _human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"
