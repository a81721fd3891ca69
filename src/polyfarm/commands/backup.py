"""``polyfarm db backup`` and ``polyfarm db restore``: see ``store/backup.py``.

The lake's storage (Arrow's filesystems) is imported inside the commands, and only when a copy
goes to or comes from the lake: the daemon and the other commands never load Arrow.
"""

from __future__ import annotations

from pathlib import Path

import click

from polyfarm.clock import utc_now
from polyfarm.commands.common import run_async
from polyfarm.settings import Settings
from polyfarm.store.backup import BackupReport, fetch_from_lake, take_backup
from polyfarm.store.restore import RestoreReport, restore_backup


@click.command("backup")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where archives go [default: backup.directory, <data_dir>/backups].",
)
@click.option(
    "--keep",
    type=click.IntRange(1),
    default=None,
    help="Newest backups kept, here and in the lake [default: backup.keep, 7].",
)
@click.option(
    "--upload/--no-upload",
    default=None,
    help="Copy the archive to <lake>/backups/ [default: backup.upload].",
)
@click.pass_obj
def db_backup(
    settings: Settings, directory: Path | None, keep: int | None, upload: bool | None
) -> None:
    """A pg_dump archive (custom format) of the whole database; older ones past --keep go."""
    upload = settings.backup.upload if upload is None else upload
    lake = None
    if upload:
        from polyfarm.lake.storage import open_configured_lake

        lake = open_configured_lake(settings)
    report = run_async(
        lambda: take_backup(
            settings,
            utc_now(),
            directory or settings.backup_dir(),
            keep or settings.backup.keep,
            lake,
        )
    )
    _print_backup(report)


def _print_backup(report: BackupReport) -> None:
    flavour = "TimescaleDB" if report.timescaledb else "PostgreSQL"
    click.echo(
        f"backup: {report.path} ({report.size_bytes / 2**20:,.1f} MiB, {report.tables} tables, "
        f"{flavour}, {report.seconds:.1f} s)"
    )
    if report.removed:
        click.echo(f"removed {len(report.removed)} older: {', '.join(report.removed)}")
    if report.uploaded:
        click.echo(f"uploaded: {report.uploaded}")
    if report.removed_remote:
        click.echo(f"removed from the lake: {', '.join(report.removed_remote)}")


@click.command("restore")
@click.argument("archive")
@click.option(
    "--from-lake",
    is_flag=True,
    help="ARCHIVE names a backup in <lake>/backups/; it is copied to backup.directory first.",
)
@click.pass_obj
def db_restore(settings: Settings, archive: str, from_lake: bool) -> None:
    """Restore ARCHIVE (a `polyfarm db backup` file) into the configured database, which must
    be new and empty; TimescaleDB's pre- and post-restore steps run when the archive has it."""
    if from_lake:
        from polyfarm.lake.storage import open_configured_lake

        path = fetch_from_lake(open_configured_lake(settings), archive, settings.backup_dir())
    else:
        path = Path(archive)
        if not path.is_file():
            raise click.BadParameter(f"no such file: {archive}", param_hint="ARCHIVE")
    report = run_async(lambda: restore_backup(settings, path))
    _print_restore(report)


def _print_restore(report: RestoreReport) -> None:
    flavour = " (TimescaleDB)" if report.timescaledb else ""
    click.echo(
        f"restored {report.archive}{flavour}: {report.tables} tables in {report.seconds:.1f} s"
    )
