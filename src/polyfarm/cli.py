"""The ``polyfarm`` command line. Settings are built here, once, and passed down.

Errors are turned into messages here and nowhere else: polyfarm's own errors (bad settings,
a database that cannot be reached or refuses the login, the embedded server failing) and
anything unexpected become one line on stderr and exit status 1. ``--log-level DEBUG`` shows
the traceback instead.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from polyfarm.errors import one_line
from polyfarm.logs import configure_logging, get_logger
from polyfarm.settings import Settings, load_settings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
log = get_logger(__name__)


# Each command's module, imported only when that command runs (or ``--help`` lists them all):
# the daemon does not pay for Arrow and the export does not pay for FastAPI and the simulator,
# about 1.5 s of imports that every command paid before.
COMMANDS: dict[str, tuple[str, str]] = {
    "db": ("polyfarm.commands.db", "db"),
    "lake": ("polyfarm.commands.lake", "lake"),
    "export": ("polyfarm.commands.export", "export"),
    "collect": ("polyfarm.commands.collect", "collect"),
    "backfill": ("polyfarm.commands.backfill", "backfill"),
    "status": ("polyfarm.commands.collect", "status"),
    "stats": ("polyfarm.commands.collect", "stats"),
    "demo": ("polyfarm.commands.demo", "demo"),
    "serve": ("polyfarm.commands.serve", "serve"),
    "sim": ("polyfarm.sim.command", "sim_command"),
}


class PolyfarmGroup(click.Group):
    """Loads a subcommand when it is asked for, runs it and turns whatever it raises into one
    line, unless debugging."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, attribute = where
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}.{attribute} is not a click command")
        return command

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


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="polyfarm")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
