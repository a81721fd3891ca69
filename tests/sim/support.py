"""Helpers shared by the simulator tests (imported by conftest and the test modules)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from polyfarm.sim import SimConfig, Simulator

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXED_START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONTROL_FRAMES = {"PONG", "NO NEW ASSETS"}


def make_config(**overrides: Any) -> SimConfig:
    """A deterministic default: frozen clock at a fixed epoch, no rate limits, no faults."""
    values: dict[str, Any] = {
        "markets": 200,
        "seed": 7,
        "speed": 0.0,
        "start_time": FIXED_START,
        "rate_limits": False,
    }
    values.update(overrides)
    return SimConfig(**values)


@asynccontextmanager
async def sim_process(
    *argv: str, **options: Any
) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, str]]]:
    """``python -m polyfarm.sim *argv`` and the four ``NAME=url`` lines it prints, in order;
    killed on the way out if the test did not stop it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polyfarm.sim", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, **options,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        lines = [(await asyncio.wait_for(process.stdout.readline(), 30)).decode() for _ in range(4)]
        yield process, dict(line.strip().split("=", 1) for line in lines)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def stop_with_sigterm(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then a clean exit within 20 s."""
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, stderr.decode()[-2000:]


@asynccontextmanager
async def running(**overrides: Any) -> AsyncIterator[Simulator]:
    async with Simulator(make_config(**overrides)) as sim:
        yield sim


async def advance(sim: Simulator, seconds: float, steps: int = 1) -> None:
    """Move the simulated clock forward in ``steps`` steps, letting writers flush between."""
    for _ in range(steps):
        sim.clock.advance(seconds / steps)
        sim.step()
        await asyncio.sleep(0)


def events_of(frame: str) -> list[dict[str, Any]]:
    """The event objects in one text frame (an object or an array of objects)."""
    decoded = orjson.loads(frame)
    return decoded if isinstance(decoded, list) else [decoded]


PING_EVERY_S = 3.0  # the simulator closes connections that do not PING for 10 s


class Feed:
    """Reads a market-channel socket: every frame, the decoded events and control texts.
    While reading it sends ``PING`` every few seconds, as a client must."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.texts: list[str] = []
        self.closed = False
        self._pinged = asyncio.get_running_loop().time()

    async def _keepalive(self, now: float) -> None:
        if now - self._pinged >= PING_EVERY_S:
            self._pinged = now
            await self.ws.send_str("PING")

    async def send(self, payload: dict[str, Any] | str) -> None:
        text = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        await self.ws.send_str(text)

    async def subscribe(self, assets: list[str], custom: bool = False, dump: bool = True) -> None:
        await self.send(
            {
                "assets_ids": assets,
                "type": "market",
                "custom_feature_enabled": custom,
                "initial_dump": dump,
            }
        )

    async def read(self, quiet: float = 0.3, limit_s: float = 20.0) -> list[dict[str, Any]]:
        """Read until no data frame arrives for ``quiet`` seconds; returns the new events.

        Control texts (``PONG``, ``NO NEW ASSETS``) are recorded but do not count as data.
        """
        loop = asyncio.get_running_loop()
        new: list[dict[str, Any]] = []
        deadline = loop.time() + limit_s
        quiet_until = loop.time() + quiet
        while loop.time() < min(deadline, quiet_until):
            await self._keepalive(loop.time())
            try:
                message = await self.ws.receive(timeout=max(quiet_until - loop.time(), 0.001))
            except TimeoutError:
                break
            if message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                self.closed = True
                break
            self.frames.append(message.data)
            if message.data in CONTROL_FRAMES:
                self.texts.append(message.data)
                continue
            quiet_until = loop.time() + quiet
            new.extend(events_of(message.data))
        self.events.extend(new)
        return new

    async def read_until(
        self, done: Callable[[list[dict[str, Any]]], bool], limit_s: float = 20.0
    ) -> list[dict[str, Any]]:
        """Read until ``done`` holds for the events read by this call (a collector pause
        longer than ``read``'s quiet window must not end a dump early)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        new: list[dict[str, Any]] = []
        while not done(new) and not self.closed and loop.time() < deadline:
            new += await self.read(limit_s=deadline - loop.time())
        return new

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event_type") == kind]


@asynccontextmanager
async def feed(http: aiohttp.ClientSession, sim: Simulator) -> AsyncIterator[Feed]:
    async with http.ws_connect(sim.ws_url, autoping=True) as ws:
        yield Feed(ws)


FeedFactory = Callable[[], Any]


HASH_KEYS = (
    "market", "asset_id", "timestamp", "hash", "bids", "asks",
    "min_order_size", "tick_size", "neg_risk", "last_trade_price",
)  # fmt: skip


def reference_hash(book: dict[str, Any], seed: dict[str, Any] | None = None) -> str:
    """The venue's book hash, written independently of the simulator's code. A WebSocket
    ``book`` lacks ``min_order_size`` and ``neg_risk``: ``seed`` supplies them."""
    values = {**(seed or {}), **book}
    ordered = {key: "" if key == "hash" else values[key] for key in HASH_KEYS}
    text = json.dumps(ordered, separators=(",", ":"))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def book_seeds(sim: Simulator) -> dict[str, dict[str, Any]]:
    """Per token, the hash inputs a WebSocket book leaves out (the market's metadata)."""
    return {
        token: {"min_order_size": str(market.min_size), "neg_risk": market.neg_risk}
        for token, (market, _) in sim.world.tokens.items()
    }
