"""Fixtures for the simulator tests: a running simulator and an HTTP session.

Every test talks to the in-process simulator over real loopback HTTP and WebSocket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from polyfarm.sim import Simulator

from .support import running


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with running() as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
