"""The ``polyfarm`` command line. Settings are built here, once, and passed down.

Errors are turned into messages here and nowhere else: polyfarm's own errors (bad settings,
a database that cannot be reached or refuses the login, the embedded server failing) and
anything unexpected become one line on stderr and exit status 1. ``--log-level DEBUG`` shows
the traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from polyfarm.commands.backfill import backfill
from polyfarm.commands.collect import collect, stats, status
from polyfarm.commands.db import db
from polyfarm.commands.demo import demo
from polyfarm.commands.export import export
from polyfarm.commands.lake import lake
from polyfarm.commands.serve import serve
from polyfarm.errors import one_line
from polyfarm.logs import configure_logging, get_logger
from polyfarm.settings import Settings, load_settings
from polyfarm.sim.command import sim_command

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
log = get_logger(__name__)


class PolyfarmGroup(click.Group):
    """Runs a subcommand and turns whatever it raises into one line, unless debugging."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if _debugging(ctx):
                raise
            raise click.ClickException(one_line(exc)) from exc


def _debugging(ctx: click.Context) -> bool:
    level = ctx.params.get("log_level")
    if level is None and isinstance(ctx.obj, Settings):
        level = ctx.obj.log_level
    return isinstance(level, str) and level.upper() == "DEBUG"


@click.group(cls=PolyfarmGroup)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML settings file (see config.example.yaml); POLYFARM_* env vars override it.",
)
@click.option(
    "--log-level",
    default=None,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="DEBUG (also shows tracebacks), INFO, WARNING, ERROR or CRITICAL.",
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, log_level: str | None) -> None:
    """polyfarm: farms Polymarket market data into TimescaleDB/PostgreSQL."""
    settings = load_settings(config_file)
    configure_logging(log_level or settings.log_level, settings.log_json)
    for message in settings.deprecations():
        log.warning(message)
    ctx.obj = settings


cli.add_command(db)
cli.add_command(lake)
cli.add_command(export)
cli.add_command(collect)
cli.add_command(backfill)
cli.add_command(status)
cli.add_command(stats)
cli.add_command(demo)
cli.add_command(serve)
cli.add_command(sim_command)


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="polyfarm")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
