"""``polyfarm serve``: the monitoring API and the dashboard."""

from __future__ import annotations

import asyncio

import click

from polyfarm.api.app import create_app
from polyfarm.api.server import bind, is_loopback, serve_app, url_of
from polyfarm.commands.common import run_async
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.runtime import install_signal_handlers
from polyfarm.sdnotify import run_notifier
from polyfarm.settings import Settings, validated_copy
from polyfarm.store.database import open_reader_pool

log = get_logger(__name__)


def with_address(settings: Settings, host: str | None, port: int | None) -> Settings:
    changes = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    return settings.model_copy(update={"api": validated_copy(settings.api, changes)})


async def serve_forever(settings: Settings, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    install_signal_handlers(stop)
    if not is_loopback(settings.api.host) and settings.api.token is None:
        log.warning("the API listens beyond loopback without api.token", host=settings.api.host)
    # The pool is opened before the server starts, so a database that cannot be reached is
    # one clear error here rather than a failed ASGI lifespan.
    with bind(settings.api.host, settings.api.port) as sock:
        async with open_reader_pool(settings) as pool:
            app = create_app(settings, pool, Metrics())
            click.echo(f"dashboard:  {url_of(sock)}   (API docs: {url_of(sock)}docs)")
            # Under systemd: ready now, and the watchdog fed while the event loop runs.
            async with asyncio.TaskGroup() as group:
                group.create_task(run_notifier(stop), name="systemd-notify")
                await serve_app(app, sock, stop)
                stop.set()


@click.command()
@click.option("--host", default=None, help="Bind address [default: api.host, 127.0.0.1].")
@click.option(
    "--port", default=None, type=click.IntRange(0, 65535), help="[default: api.port, 8000]."
)
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None) -> None:
    """The monitoring API and dashboard, until SIGINT/SIGTERM (starts the embedded database
    when it is the one configured)."""
    run_async(lambda: serve_forever(with_address(settings, host, port)))
