"""Simulator scale benchmark: start-up time at N markets and WebSocket messages per second.

    .venv/bin/python bench/sim_scale.py                 # 20,000 markets, table on stdout
    .venv/bin/python bench/sim_scale.py --json          # … plus one JSON object as the last line

Start-up is measured in-process (``Simulator.__aenter__``: world build + server bind). Throughput
is measured against the simulator running as a separate process (``python -m polyfarm.sim``) so
server and clients each get a core: the clients subscribe every token, 500 per connection (the
per-connection cap), with custom features on, and count event objects received after a warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from rich.console import Console
from rich.table import Table

from polyfarm.logs import configure_logging
from polyfarm.sim import SimConfig, Simulator

REPO = Path(__file__).resolve().parents[1]
CONTROL = {b"PONG", b"NO NEW ASSETS"}
PING_EVERY_S = 5.0


@dataclass
class Counts:
    messages: int = 0
    frames: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


async def measure_startup(markets: int) -> tuple[float, int]:
    began = time.perf_counter()
    async with Simulator(SimConfig(markets=markets, seed=1, speed=0.0)) as sim:
        elapsed = time.perf_counter() - began
        return elapsed, len(sim.world.tokens)


@contextlib.asynccontextmanager
async def server_process(markets: int, speed: float) -> AsyncIterator[dict[str, str]]:
    command = [sys.executable, "-m", "polyfarm.sim", "--markets", str(markets)]
    command += ["--speed", str(speed), "--no-rate-limits"]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    try:
        lines = [
            (await asyncio.wait_for(process.stdout.readline(), 120)).decode() for _ in range(4)
        ]
        yield dict(line.strip().split("=", 1) for line in lines)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def read_socket(
    ws: aiohttp.ClientWebSocketResponse, counts: Counts, stop: asyncio.Event
) -> None:
    """Count what arrives; ``PING`` every few seconds, as the venue closes idle connections."""
    next_ping = time.monotonic() + PING_EVERY_S
    while not stop.is_set():
        if time.monotonic() >= next_ping:
            await ws.send_str("PING")
            next_ping = time.monotonic() + PING_EVERY_S
        try:
            message = await ws.receive(timeout=max(next_ping - time.monotonic(), 0.01))
        except TimeoutError:
            continue
        if message.type is not aiohttp.WSMsgType.TEXT:
            return
        data = message.data.encode() if isinstance(message.data, str) else message.data
        counts.frames += 1
        if data in CONTROL:
            continue
        decoded = orjson.loads(data)
        for event in decoded if isinstance(decoded, list) else [decoded]:
            counts.messages += 1
            kind = event.get("event_type", "?")
            counts.by_type[kind] = counts.by_type.get(kind, 0) + 1


async def stats(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.get(f"{base}/_sim/stats") as response:
        body: dict[str, Any] = await response.json()
        return body


async def catalogue(http: aiohttp.ClientSession, clob_url: str) -> list[str]:
    """Every open token, walking CLOB ``/markets`` with its base64 cursor."""
    tokens: list[str] = []
    cursor = "MA=="
    while cursor != "LTE=":
        async with http.get(f"{clob_url}/markets", params={"next_cursor": cursor}) as response:
            page = await response.json()
        tokens += [t["token_id"] for m in page["data"] if not m["closed"] for t in m["tokens"]]
        cursor = page["next_cursor"]
    return tokens


async def open_sockets(
    http: aiohttp.ClientSession, ws_url: str, tokens: list[str], per_conn: int
) -> list[aiohttp.ClientWebSocketResponse]:
    sockets = []
    for start in range(0, len(tokens), per_conn):
        ws = await http.ws_connect(ws_url, max_msg_size=0)
        subscribe = {
            "assets_ids": tokens[start : start + per_conn],
            "type": "market",
            "custom_feature_enabled": True,
            "initial_dump": True,
        }
        await ws.send_str(orjson.dumps(subscribe).decode())
        sockets.append(ws)
    return sockets


async def count_window(
    http: aiohttp.ClientSession, base: str, counts: Counts, seconds: float
) -> dict[str, float]:
    """Messages and frames per second received (clients) and sent (server) over ``seconds``."""
    messages, frames = counts.messages, counts.frames
    server_before = await stats(http, base)
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - began
    server_after = await stats(http, base)
    sent = server_after["ws_messages_sent"] - server_before["ws_messages_sent"]
    return {
        "ws_msgs_per_s": (counts.messages - messages) / elapsed,
        "ws_frames_per_s": (counts.frames - frames) / elapsed,
        "server_msgs_per_s": sent / elapsed,
    }


async def measure_ws(markets: int, speed: float, seconds: float, per_conn: int) -> dict[str, Any]:
    async with server_process(markets, speed) as env, aiohttp.ClientSession() as http:
        base = env["POLYFARM_CLOB_URL"].removesuffix("/clob")
        tokens = await catalogue(http, env["POLYFARM_CLOB_URL"])
        sockets = await open_sockets(http, env["POLYFARM_WS_URL"], tokens, per_conn)
        counts, stop = Counts(), asyncio.Event()
        async with asyncio.TaskGroup() as group:
            for ws in sockets:
                group.create_task(read_socket(ws, counts, stop))
            await asyncio.sleep(4.0)  # warm-up: the initial book dumps
            rates = await count_window(http, base, counts, seconds)
            stop.set()
            for ws in sockets:
                await ws.close()
    return {"connections": len(sockets), "tokens": len(tokens), "speed": speed, **rates,
            "by_type": counts.by_type}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markets", type=int, default=20_000)
    parser.add_argument("--speed", type=float, default=4.0, help="simulated seconds per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window")
    parser.add_argument("--per-connection", type=int, default=500)
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object as the last line"
    )
    args = parser.parse_args()
    configure_logging(level="WARNING")
    startup_s, tokens = asyncio.run(measure_startup(args.markets))
    ws = asyncio.run(measure_ws(args.markets, args.speed, args.seconds, args.per_connection))
    table = Table(title=f"polyfarm simulator at {args.markets:,} markets / {tokens:,} tokens")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("start-up (world build + bind)", f"{startup_s:.2f} s")
    table.add_row("WebSocket connections", str(ws["connections"]))
    table.add_row("clock speed", f"{args.speed:g}x")
    table.add_row("WS messages/s received", f"{ws['ws_msgs_per_s']:,.0f}")
    table.add_row("WS frames/s received", f"{ws['ws_frames_per_s']:,.0f}")
    table.add_row("WS messages/s sent (server)", f"{ws['server_msgs_per_s']:,.0f}")
    Console().print(table)
    if args.json:
        result = {"markets": args.markets, "startup_s": round(startup_s, 3), **ws}
        print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
