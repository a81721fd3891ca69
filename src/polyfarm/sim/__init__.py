"""A faithful local Polymarket: Gamma, CLOB REST, Data API and the market WebSocket.

Public surface::

    from polyfarm.sim import Simulator, SimConfig

    async with Simulator(SimConfig(markets=200, seed=7)) as sim:
        sim.env()  # POLYFARM_*_URL for the collectors

Everything else in this package is internal.
"""

from polyfarm.sim.clock import SimClock
from polyfarm.sim.config import SimConfig
from polyfarm.sim.faults import FaultSpecError
from polyfarm.sim.server import Simulator

__all__ = ["FaultSpecError", "SimClock", "SimConfig", "Simulator"]
