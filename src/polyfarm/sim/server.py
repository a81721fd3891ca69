"""The simulator's aiohttp application and the ``Simulator`` async context manager.

One app on loopback serves Gamma under ``/gamma``, the CLOB under ``/clob``, the Data API under
``/data``, the market WebSocket at ``/ws/market`` and control/ground truth under ``/_sim``. A
single ticker task (owned here, cancelled on exit) steps the world every ``tick_s`` and fans
the resulting messages out; request handlers also bring the world up to the clock first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import web

from polyfarm.aio import AsyncResource
from polyfarm.errors import ConfigError
from polyfarm.logs import get_logger
from polyfarm.sim.clob import clob_routes
from polyfarm.sim.clock import SimClock
from polyfarm.sim.config import SimConfig
from polyfarm.sim.control import control_routes, stats
from polyfarm.sim.data_api import data_routes
from polyfarm.sim.faults import FaultController
from polyfarm.sim.gamma import gamma_routes
from polyfarm.sim.middleware import error_middleware, fault_middleware
from polyfarm.sim.ratelimit import RateLimiter
from polyfarm.sim.state import STATE, SimState
from polyfarm.sim.world import World, WorldParams
from polyfarm.sim.ws import Hub, market_channel

log = get_logger(__name__)


async def _ws_route(request: web.Request) -> web.StreamResponse:
    return await market_channel(request.app[STATE].hub, request)


def build_app(state: SimState) -> web.Application:
    app = web.Application(
        middlewares=[
            fault_middleware(state.faults, state.limiter, state.counters),
            error_middleware(),
        ],
        client_max_size=16 * 1024 * 1024,
    )
    app[STATE] = state
    app.add_routes(gamma_routes() + clob_routes() + data_routes() + control_routes())
    app.add_routes([web.get("/ws/market", _ws_route)])
    return app


def world_params(config: SimConfig) -> WorldParams:
    return WorldParams(
        seed=config.seed,
        markets=config.markets,
        trade_rate=config.trade_rate_per_s(),
        quote_rate=config.quote_rate,
        spawn_rate=config.spawn_rate_per_s(),
        max_events_per_step=config.max_events_per_step,
        resolution_delay_s=config.resolution_delay_s,
        trade_retention=config.trade_retention,
        v2_share=config.v2_share,
        mix=config.mix,
    )


def build_state(config: SimConfig, clock: SimClock) -> SimState:
    """Everything the app needs, built synchronously (the world build is pure CPU work)."""
    world = World(world_params(config), clock.now())
    faults = FaultController(config.faults, seed=config.seed, rate_limits=config.rate_limits)
    counters: dict[str, int] = {}
    hub = Hub(world, faults, config.ws_asset_cap, counters, config.ws_idle_timeout_s)
    world.watch = hub.is_watched
    return SimState(config, clock, world, faults, RateLimiter(), hub, counters)


class Simulator(AsyncResource):
    """A running simulator; use ``async with Simulator(SimConfig(...)) as sim``."""

    def __init__(self, config: SimConfig | None = None, *, clock: SimClock | None = None) -> None:
        self.config = config or SimConfig()
        self.clock = clock or SimClock(self.config.start_epoch(time.time()), self.config.speed)
        self._state: SimState | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.port = self.config.port
        self.startup_s = 0.0

    async def open(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        began = time.perf_counter()
        self._state = await asyncio.to_thread(build_state, self.config, self.clock)
        runner = web.AppRunner(
            build_app(self._state), handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(
                f"the simulator cannot listen on {self.config.host}:{self.config.port} "
                f"({exc.strerror or exc}); choose another --port"
            ) from exc
        self.port = int(runner.addresses[0][1])
        self._ticker = asyncio.create_task(self._tick_loop(), name="polyfarm-sim-ticker")
        self.startup_s = time.perf_counter() - began
        log.info(
            "simulator started",
            port=self.port,
            markets=self.config.markets,
            startup_s=round(self.startup_s, 3),
        )

    async def stop(self) -> None:
        """Fixed order: stop the ticker, close WebSocket clients, then the HTTP server."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._state is not None:
            await self._state.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _tick_loop(self) -> None:
        state = self.state
        loop = asyncio.get_running_loop()
        interval = self.config.no_new_assets_interval_s
        next_notice = loop.time() + interval
        while True:
            try:
                state.sync()
            except Exception:
                log.exception("world step failed")
                raise
            if loop.time() >= next_notice:
                state.hub.no_new_assets()
                next_notice = loop.time() + interval
            await asyncio.sleep(self.config.tick_s)

    # -- public surface -----------------------------------------------------------------------

    @property
    def state(self) -> SimState:
        if self._state is None:
            raise RuntimeError("the simulator is not running")
        return self._state

    @property
    def world(self) -> World:
        return self.state.world

    @property
    def faults(self) -> FaultController:
        return self.state.faults

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def gamma_url(self) -> str:
        return f"{self.base_url}/gamma"

    @property
    def clob_url(self) -> str:
        return f"{self.base_url}/clob"

    @property
    def data_url(self) -> str:
        return f"{self.base_url}/data"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/ws/market"

    def env(self) -> dict[str, str]:
        return {
            "POLYFARM_GAMMA_URL": self.gamma_url,
            "POLYFARM_CLOB_URL": self.clob_url,
            "POLYFARM_DATA_URL": self.data_url,
            "POLYFARM_WS_URL": self.ws_url,
        }

    def step(self) -> None:
        """Bring the world up to the clock now (tests call this after ``clock.advance``)."""
        self.state.sync()

    def stats(self) -> dict[str, Any]:
        return stats(self.state)
