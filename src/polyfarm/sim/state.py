"""The objects every route handler shares, stored on the aiohttp app under one typed key."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from aiohttp import web

from polyfarm.sim.clock import SimClock
from polyfarm.sim.config import SimConfig
from polyfarm.sim.faults import FaultController
from polyfarm.sim.ratelimit import RateLimiter
from polyfarm.sim.world import World
from polyfarm.sim.ws import Hub


@dataclass(eq=False)
class SimState:
    config: SimConfig
    clock: SimClock
    world: World
    faults: FaultController
    limiter: RateLimiter
    hub: Hub
    counters: dict[str, int] = field(default_factory=dict)
    shuffle_rng: random.Random = field(default_factory=lambda: random.Random(0xB00C))
    wallets: dict[str, int] = field(default_factory=dict)

    def sync(self) -> None:
        """Bring the world up to the clock and push what happened to WebSocket clients."""
        self.hub.publish(self.world.step(self.clock.now()))


STATE = web.AppKey("polyfarm_sim_state", SimState)
