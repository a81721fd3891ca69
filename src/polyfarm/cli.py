"""The ``polyfarm`` command line. Settings are built here, once, and passed down."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from polyfarm.commands.collect import collect, stats, status
from polyfarm.commands.db import db
from polyfarm.commands.demo import demo
from polyfarm.commands.serve import serve
from polyfarm.errors import PolyfarmError
from polyfarm.logs import configure_logging
from polyfarm.settings import load_settings
from polyfarm.sim.command import sim_command


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


cli.add_command(db)
cli.add_command(collect)
cli.add_command(status)
cli.add_command(stats)
cli.add_command(demo)
cli.add_command(serve)
cli.add_command(sim_command)


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="polyfarm")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
