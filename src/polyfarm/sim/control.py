"""Control and ground-truth routes under ``/_sim`` (never faulted or rate limited)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from polyfarm.sim.clock import MAX_ADVANCE_S, MAX_SPEED, bounded_number
from polyfarm.sim.faults import FaultSpecError
from polyfarm.sim.httputil import ApiError, json_body, json_response, query_int
from polyfarm.sim.render_clob import truth_row
from polyfarm.sim.state import STATE, SimState

TRUTH_MAX = 50_000


def stats(state: SimState) -> dict[str, Any]:
    world = state.world
    counters = state.counters
    return {
        "mix": state.config.mix.value,
        "markets": len(world.markets),
        "open_markets": len(world.open_markets()),
        "events": len(world.events),
        "tokens": len(world.tokens),
        "trades_emitted": world.trades.emitted,
        "trades_retained": len(world.trades),
        "ws_connections": len(state.hub.connections),
        "ws_connections_total": counters.get("ws_connections_total", 0),
        "ws_messages_sent": counters.get("ws_messages_sent", 0),
        "ws_frames_sent": counters.get("ws_frames_sent", 0),
        "ws_slow_consumer_dropped": counters.get("ws_slow_consumer_dropped", 0),
        "http_requests": counters.get("http_requests", 0),
        "faults": dict(state.faults.counts),
        "clock": state.clock.snapshot(),
    }


async def get_stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.sync()
    return json_response(stats(state))


async def get_truth_trades(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.sync()
    since = query_int(request.query, "since_id", 0, status=400)
    limit = min(max(query_int(request.query, "limit", 1000, status=400), 1), TRUTH_MAX)
    trades = state.world.trades.since(since, limit)
    more = bool(trades) and trades[-1].id < state.world.trades.emitted
    return json_response({
        "trades": [truth_row(fill) for fill in trades],
        "next_since_id": trades[-1].id if more else None,
        "first_id": state.world.trades.first_id(),
        "emitted": state.world.trades.emitted,
    })  # fmt: skip


async def get_faults(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].faults.snapshot())


async def post_faults(request: web.Request) -> web.Response:
    faults = request.app[STATE].faults
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw.strip().startswith(b"{") else {"spec": raw.decode()}
        faults.set(str(body.get("spec", "")))
    except (FaultSpecError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"invalid fault spec: {exc}") from None
    return json_response(faults.snapshot())


def body_number(body: object, name: str, high: float) -> float:
    """``{name: N}`` with N a JSON number in [0, ``high``], or a 400."""
    value = body.get(name) if isinstance(body, dict) else None
    try:
        return bounded_number(value, name, high)
    except ValueError as exc:
        raise ApiError(400, f'body must be {{"{name}": N}}: {exc}') from None


async def post_clock_advance(request: web.Request) -> web.Response:
    state = request.app[STATE]
    seconds = body_number(await json_body(request), "seconds", MAX_ADVANCE_S)
    state.clock.advance(seconds)
    state.sync()
    return json_response(state.clock.snapshot())


async def post_clock_speed(request: web.Request) -> web.Response:
    state = request.app[STATE]
    speed = body_number(await json_body(request), "speed", MAX_SPEED)
    state.sync()
    state.clock.set_speed(speed)
    return json_response(state.clock.snapshot())


def control_routes(prefix: str = "/_sim") -> list[web.RouteDef]:
    return [
        web.get(f"{prefix}/stats", get_stats),
        web.get(f"{prefix}/truth/trades", get_truth_trades),
        web.get(f"{prefix}/faults", get_faults),
        web.post(f"{prefix}/faults", post_faults),
        web.post(f"{prefix}/clock/advance", post_clock_advance),
        web.post(f"{prefix}/clock/speed", post_clock_speed),
    ]
