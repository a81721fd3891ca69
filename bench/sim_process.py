"""The simulator as a separate process, for benchmarks that measure the daemon against it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))


async def start_sim(
    markets: int, seed: int, speed: float | None = None, mix: str | None = None
) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    """Start ``polyfarm sim``; returns the process and the ``POLYFARM_*_URL`` lines it printed.
    ``mix`` (``uniform`` or ``venue``) is the simulator's market mix; None: its default."""
    options = ["--markets", str(markets), "--seed", str(seed)]
    if speed is not None:
        options += ["--speed", str(speed)]
    if mix is not None:
        options += ["--mix", mix]
    sim = await asyncio.create_subprocess_exec(
        POLYFARM,
        "sim",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert sim.stdout is not None
    urls: dict[str, str] = {}
    while len(urls) < 4:
        line = (await asyncio.wait_for(sim.stdout.readline(), 120)).decode().strip()
        if not line:
            raise RuntimeError("simulator exited before printing its URLs")
        if line.startswith("POLYFARM_") and "=" in line:
            key, value = line.split("=", 1)
            urls[key] = value
    return sim, urls
