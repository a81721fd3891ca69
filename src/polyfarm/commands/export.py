"""``polyfarm export``: a range of the time series to Parquet or CSV files.

The export's modules (Arrow, Parquet, ADBC) are imported inside the command, as for ``polyfarm
lake``: the other commands, the daemon first, do not pay for them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from polyfarm.lake.layout import TABLES_BY_NAME
from polyfarm.settings import Settings
from polyfarm.store.database import resolve_target

_TIME = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"])


@click.command("export")
@click.option("--table", "tables", multiple=True, type=click.Choice(sorted(TABLES_BY_NAME)),
              help="repeatable; default: every time series")  # fmt: skip
@click.option("--from", "start", type=_TIME, required=True, help="UTC, inclusive")
@click.option("--to", "end", type=_TIME, required=True, help="UTC, exclusive")
@click.option("--market", "markets", multiple=True, help="a market id (all its tokens); repeatable")
@click.option("--token", "tokens", multiple=True, help="a token id; repeatable")
@click.option("--format", "file_format", type=click.Choice(["parquet", "csv"]), default="parquet",
              show_default=True)  # fmt: skip
@click.option("--out", "destination", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="folder for <table>.<format>")  # fmt: skip
@click.pass_obj
def export(
    settings: Settings,
    tables: tuple[str, ...],
    start: datetime,
    end: datetime,
    markets: tuple[str, ...],
    tokens: tuple[str, ...],
    file_format: str,
    destination: Path,
) -> None:
    """Write the rows of a time range (of some markets or tokens, or all) to one Parquet or CSV
    file per table, streaming: memory stays bounded whatever the range."""
    from polyfarm.data.extract import FileFormat, extract_table
    from polyfarm.data.farm import Farm

    dsn = resolve_target(settings).dsn
    token_ids = None
    if markets or tokens:
        with Farm(dsn) as farm:
            token_ids = farm.token_ids([*markets, *tokens])
    chosen = [TABLES_BY_NAME[name] for name in tables] or list(TABLES_BY_NAME.values())
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, transient=True) as progress:
        for table in chosen:
            task = progress.add_task(table.name)
            done = extract_table(
                dsn,
                table,
                start.replace(tzinfo=UTC),
                end.replace(tzinfo=UTC),
                destination,
                FileFormat(file_format),
                token_ids=token_ids,
                progress=_counter(progress, task, table.name),
            )
            progress.remove_task(task)
            click.echo(f"{done.table}: {done.rows:,} rows -> {done.path}")


def _counter(progress: Progress, task: TaskID, name: str) -> Callable[[int], None]:
    """A callback that shows the rows written so far on ``task``'s line."""
    written = [0]

    def advance(rows: int) -> None:
        written[0] += rows
        progress.update(task, description=f"{name}: {written[0]:,} rows")

    return advance
