"""``polyfarm demo``: the simulator, the collector, the database and the dashboard on one
machine, on loopback.

Nothing reaches the internet: a simulated Polymarket is started in-process and every endpoint
setting points at it. A summary of what has been stored is printed every few seconds; Ctrl-C
stops the collector (flushing what it holds) and then the simulator.
"""

from __future__ import annotations

import asyncio

import click

from polyfarm.aio import sleep_unless
from polyfarm.api.app import create_app
from polyfarm.api.server import bind, serve_app, url_of
from polyfarm.commands.common import run_async
from polyfarm.daemon import run_daemon
from polyfarm.metrics import Metrics
from polyfarm.runtime import install_signal_handlers
from polyfarm.settings import Settings
from polyfarm.sim import SimConfig, Simulator
from polyfarm.sim.clock import MAX_SPEED
from polyfarm.sim.command import check_speed
from polyfarm.store.database import (
    migrate_database,
    open_pool,
    open_reader_pool,
    redact_dsn,
    resolve_target,
)
from polyfarm.store.stats import table_stats

SUMMARY_TABLES = ("markets", "tokens", "price_snapshots", "orderbook_snapshots", "trades")


def pointed_at(settings: Settings, sim: Simulator) -> Settings:
    urls = {
        "gamma_url": sim.gamma_url,
        "clob_url": sim.clob_url,
        "data_url": sim.data_url,
        "ws_url": sim.ws_url,
    }
    return settings.model_copy(update=urls)


async def print_summaries(settings: Settings, stop: asyncio.Event, every_s: float) -> None:
    async with open_pool(settings, start_embedded=False) as pool:
        while not stop.is_set():
            await sleep_unless(stop, every_s)
            async with pool.acquire() as conn:
                stats = {s.table: s.rows for s in await table_stats(conn)}
            line = "  ".join(f"{name}={stats.get(name, 0):,}" for name in SUMMARY_TABLES)
            click.echo(f"[demo] {line}")


async def run_demo(settings: Settings, config: SimConfig, duration_s: float | None) -> None:
    stop = asyncio.Event()
    install_signal_handlers(stop)
    metrics = Metrics()  # one registry: the collector's endpoint and the API's /metrics
    with bind(settings.api.host, settings.api.port) as api_socket:
        async with Simulator(config) as sim:
            settings = pointed_at(settings, sim)
            await _migrate(settings)  # the API reads a schema from its first request on
            _print_where(settings, sim, config, url_of(api_socket))
            api = create_app(
                settings, lambda: open_reader_pool(settings, start_embedded=False), metrics
            )
            async with asyncio.TaskGroup() as group:
                group.create_task(run_daemon(settings, stop, metrics))
                group.create_task(serve_app(api, api_socket, stop))
                group.create_task(_summaries_when_ready(settings, stop))
                if duration_s is not None:
                    group.create_task(_stop_after(stop, duration_s))


async def _migrate(settings: Settings) -> None:
    async with open_pool(settings) as pool:
        await migrate_database(pool, settings)


def _print_where(settings: Settings, sim: Simulator, config: SimConfig, dashboard: str) -> None:
    click.echo(f"simulator:  {sim.gamma_url.rsplit('/', 1)[0]} ({config.markets} markets)")
    click.echo(f'database:   psql "{redact_dsn(resolve_target(settings).dsn)}"')
    click.echo(f"dashboard:  {dashboard}")
    if settings.metrics_port:
        click.echo(f"metrics:    http://{settings.metrics_host}:{settings.metrics_port}/metrics")
    click.echo("inspect:    .venv/bin/polyfarm stats   |   .venv/bin/polyfarm status")
    click.echo("stop:       Ctrl-C")


async def _summaries_when_ready(settings: Settings, stop: asyncio.Event) -> None:
    # The collector starts (and migrates) the database; give it a moment before reading.
    await sleep_unless(stop, 3)
    if not stop.is_set():
        await print_summaries(settings, stop, every_s=10)


async def _stop_after(stop: asyncio.Event, seconds: float) -> None:
    await sleep_unless(stop, seconds)
    stop.set()


@click.command()
@click.option("--markets", default=300, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.01, MAX_SPEED),
    callback=check_speed,  # the range alone lets NaN through
)
@click.option("--faults", default="", help="Simulator fault spec, e.g. http_429=0.05.")
@click.option("--duration", type=click.FloatRange(1), help="Stop by itself after N seconds.")
@click.pass_obj
def demo(
    settings: Settings, markets: int, seed: int, speed: float, faults: str, duration: float | None
) -> None:
    """Simulated Polymarket + collector + database on this machine; Ctrl-C stops all."""
    config = SimConfig(markets=markets, seed=seed, speed=speed, faults=faults)
    run_async(lambda: run_demo(settings, config, duration))
