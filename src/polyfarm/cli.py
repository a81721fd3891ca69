"""The ``polyfarm`` command line. Settings are built here, once, and passed down."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from polyfarm.errors import PolyfarmError
from polyfarm.logs import configure_logging
from polyfarm.settings import Settings, load_settings
from polyfarm.store.database import migrate_database, open_pool, resolve_target
from polyfarm.store.status import SchemaStatus, schema_status

T = TypeVar("T")


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    except PolyfarmError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML settings file (see config.example.yaml); POLYFARM_* env vars override it.",
)
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR.")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, log_level: str | None) -> None:
    """polyfarm: farms Polymarket market data into TimescaleDB/PostgreSQL."""
    try:
        settings = load_settings(config_file)
    except PolyfarmError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(log_level or settings.log_level, settings.log_json)
    ctx.obj = settings


# -- db ---------------------------------------------------------------------------------------


@cli.group()
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
    try:
        started = target.embedded.start()
    except PolyfarmError as exc:
        raise click.ClickException(str(exc)) from exc
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

    _run(go)


@db.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def db_status(settings: Settings, as_json: bool) -> None:
    """Schema version, migrations, TimescaleDB features, table sizes and row estimates."""

    async def go() -> SchemaStatus:
        async with open_pool(settings) as pool, pool.acquire() as conn:
            return await schema_status(conn)

    status = _run(go)
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


# -- demo -------------------------------------------------------------------------------------


@cli.command()
@click.pass_obj
def demo(settings: Settings) -> None:
    """Start the database, migrate it and show its status (the collector joins later)."""

    async def go() -> SchemaStatus:
        async with open_pool(settings) as pool:
            await migrate_database(pool, settings)
            async with pool.acquire() as conn:
                return await schema_status(conn)

    status = _run(go)
    print_schema_status(status, resolve_target(settings).description)


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="polyfarm")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
