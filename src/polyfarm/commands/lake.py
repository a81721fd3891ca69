"""``polyfarm lake …``: export sealed days into the Parquet lake, list it, verify it.

The lake's modules are imported inside the commands: Arrow, Parquet and the ADBC driver take
about 150 MB and two seconds to load, which every other command (the daemon first) would pay
for nothing.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from polyfarm.commands.common import run_async
from polyfarm.lake.layout import TABLES_BY_NAME
from polyfarm.settings import Settings
from polyfarm.store.database import open_pool, resolve_target

if TYPE_CHECKING:
    from polyfarm.lake.archive import ArchiveReport, DayJob
    from polyfarm.lake.verify import Check

_TABLE = click.Choice(sorted(TABLES_BY_NAME))
_DAY = click.DateTime(formats=["%Y-%m-%d"])


@click.group()
def lake() -> None:
    """The Parquet lake: sealed UTC days of every time series, with a manifest."""


@lake.command("export")
@click.option("--table", "tables", multiple=True, type=_TABLE, help="default: every table")
@click.option("--from", "first", type=_DAY, help="first day (default: the oldest row's)")
@click.option("--to", "last", type=_DAY, help="last day (default: the last sealed day)")
@click.option("--lake", "url", help="a folder or s3://bucket/prefix (default: lake.url)")
@click.option("--recheck-days", default=2, show_default=True, type=click.IntRange(0),
              help="days already in the lake exported again (late repairs)")  # fmt: skip
@click.option("--all", "everything", is_flag=True, help="check every day again")
@click.pass_obj
def lake_export(
    settings: Settings,
    tables: tuple[str, ...],
    first: datetime | None,
    last: datetime | None,
    url: str | None,
    recheck_days: int,
    everything: bool,
) -> None:
    """Write every sealed day not yet in the lake (or changed since) as Parquet, with its
    manifest entry. Safe to run again, and to stop: a day is written whole or not at all."""
    from polyfarm.lake.archive import archive, plan_days
    from polyfarm.lake.storage import open_configured_lake
    from polyfarm.lake.verify import entries

    target = open_configured_lake(settings, url)
    in_lake = frozenset(
        (check.entry.table, check.entry.day)
        for check in ([] if everything else entries(target))
        if check.entry is not None
    )
    dsn = resolve_target(settings).dsn

    async def go() -> ArchiveReport:
        async with open_pool(settings) as pool:
            async with pool.acquire() as conn:
                jobs = await plan_days(
                    conn,
                    datetime.now(UTC),
                    timedelta(hours=settings.lake.seal_after_hours),
                    [TABLES_BY_NAME[name] for name in tables] or list(TABLES_BY_NAME.values()),
                    first.date() if first else None,
                    last.date() if last else None,
                    in_lake=in_lake,
                    recheck_days=recheck_days,
                )
            with Progress(transient=True) as progress:
                task = progress.add_task("exporting days", total=len(jobs))

                def advance(job: DayJob) -> None:
                    progress.update(task, advance=1, description=f"{job.table.name} {job.day}")

                return await archive(pool, dsn, target, jobs, progress=advance)

    report = run_async(go)
    click.echo(
        f"{len(report.written)} days written ({report.rows:,} rows), "
        f"{report.unchanged} unchanged, into {target.url}"
    )


@lake.command("status")
@click.option("--lake", "url", help="a folder or s3://bucket/prefix (default: lake.url)")
@click.pass_obj
def lake_status(settings: Settings, url: str | None) -> None:
    """Per table: days, rows, bytes, the first and last day, and known holes."""
    from polyfarm.lake.storage import open_configured_lake
    from polyfarm.lake.verify import entries

    target = open_configured_lake(settings, url)
    checks = entries(target)
    table = Table("table", "days", "rows", "bytes", "first day", "last day", "gaps")
    for name in sorted({check.table for check in checks}):
        days = [c.entry for c in checks if c.table == name and c.entry is not None]
        spans: list[date] = [entry.day for entry in days]
        table.add_row(
            name,
            str(len(days)),
            f"{sum(e.rows for e in days):,}",
            f"{sum(e.bytes for e in days):,}",
            str(min(spans)) if spans else "",
            str(max(spans)) if spans else "",
            str(sum(len(e.gaps) for e in days)),
        )
    Console().print(f"[bold]lake[/]: {target.url}")
    Console().print(table)
    _report_problems(checks)


@lake.command("verify")
@click.option("--lake", "url", help="a folder or s3://bucket/prefix (default: lake.url)")
@click.pass_obj
def lake_verify(settings: Settings, url: str | None) -> None:
    """Read every file back and check it against its manifest entry (size, SHA-256, rows).
    Exits 1 when any is missing or differs."""
    from polyfarm.lake.storage import open_configured_lake
    from polyfarm.lake.verify import Verdict, entries, verify_entry

    target = open_configured_lake(settings, url)
    checks = [verify_entry(target, check) for check in entries(target)]
    ok = sum(check.verdict is Verdict.OK for check in checks)
    click.echo(f"{ok} of {len(checks)} partitions verified in {target.url}")
    _report_problems(checks)


def _report_problems(checks: list[Check]) -> None:
    from polyfarm.lake.verify import Verdict

    bad = [check for check in checks if check.verdict is not Verdict.OK]
    for check in bad:
        click.echo(f"{check.where}: {check.verdict.value} {check.detail}".rstrip(), err=True)
    if bad:
        sys.exit(1)
