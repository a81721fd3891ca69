"""``polyfarm sim`` / ``python -m polyfarm.sim``: run the simulator until SIGINT or SIGTERM.

Prints exactly four ``POLYFARM_*_URL=…`` lines on stdout (flushed, so a shell can ``eval``
them); logs go to stderr. The signal handler only sets an event; shutdown then runs in a fixed
order inside ``Simulator.stop``.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import click
import structlog

from polyfarm.logs import configure_logging
from polyfarm.sim.clock import MAX_SPEED, bounded_number
from polyfarm.sim.config import SimConfig, is_loopback
from polyfarm.sim.faults import FaultSpec, FaultSpecError
from polyfarm.sim.mix import Mix
from polyfarm.sim.server import Simulator


def _check_faults(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        FaultSpec.parse(value)
    except FaultSpecError as exc:
        raise click.BadParameter(str(exc)) from exc
    return value


def check_speed(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """``--speed``: a finite number from 0 to ``MAX_SPEED`` (click's ranges let NaN through)."""
    try:
        return bounded_number(value, "speed", MAX_SPEED)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


async def serve(config: SimConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Simulator(config) as sim:
            for name, url in sim.env().items():
                sys.stdout.write(f"{name}={url}\n")
            sys.stdout.flush()
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@click.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to bind")
@click.option(
    "--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0 = any free port"
)
@click.option(
    "--markets", default=200, show_default=True, type=click.IntRange(1), help="initial markets"
)
@click.option("--seed", default=7, show_default=True, type=int, help="world seed")
@click.option(
    "--mix",
    default=Mix.UNIFORM.value,
    show_default=True,
    type=click.Choice([mix.value for mix in Mix]),
    help="uniform: every tier alike; venue: the venue's tier mix and heavy-tailed activity",
)
@click.option(
    "--faults",
    default="",
    callback=_check_faults,
    help="fault spec, e.g. http_429=0.1,ws_drop=0.001",
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=float,
    callback=check_speed,
    help=f"simulated seconds per real second, at most {MAX_SPEED:g}",
)
@click.option(
    "--ws-asset-cap",
    default=500,
    show_default=True,
    type=click.IntRange(1),
    help="assets per WebSocket connection",
)
@click.option(
    "--rate-limits/--no-rate-limits",
    default=True,
    show_default=True,
    help="documented per-10 s limits (429)",
)
@click.option("--allow-remote", is_flag=True, help="allow binding a non-loopback host")
def sim_command(
    host: str, port: int, markets: int, seed: int, mix: str, faults: str, speed: float,
    ws_asset_cap: int, rate_limits: bool, allow_remote: bool,
) -> None:  # fmt: skip
    """Run the local Polymarket simulator (Gamma, CLOB, Data API, market WebSocket)."""
    if not allow_remote and not is_loopback(host):
        raise click.UsageError(f"refusing to bind non-loopback host {host!r}; pass --allow-remote")
    if not structlog.is_configured():
        configure_logging()  # stdout carries only the four URL lines; logs go to stderr
    config = SimConfig(
        markets=markets, seed=seed, mix=Mix(mix), speed=speed, faults=faults, host=host,
        port=port, ws_asset_cap=ws_asset_cap, rate_limits=rate_limits, allow_remote=allow_remote,
    )  # fmt: skip
    asyncio.run(serve(config))
