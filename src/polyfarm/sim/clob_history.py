"""``/prices-history`` and ``/batch-prices-history`` with the 2026-08 rules.

* ``interval`` (``max``/``all`` = last ~31 days, ``1m`` = 30 days, ``1w``, ``1d``, ``6h``,
  ``1h``) wins over ``startTs``/``endTs``; minimum fidelity 5 for ``1w`` and 10 for ``1m``.
* Explicit windows may span at most 15 days (1,296,000 s).
* No window at all reads as ``interval=max``.
* ``p`` is the midpoint forward-filled per bucket; points stop at ``closedTime``.
* ``SimConfig.history_bug_216`` reproduces py-clob-client #216: a resolved token with
  ``fidelity`` < 720 returns an empty history.
* ``SimConfig.clob_history_max_age_s`` (unset by default): points older than that are no
  longer served.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from polyfarm.sim.history import history_points
from polyfarm.sim.httputil import ApiError, json_body, json_response
from polyfarm.sim.model import Outcome
from polyfarm.sim.state import STATE, SimState

DAY = 86_400
INTERVALS = {"max": 31 * DAY, "all": 31 * DAY, "1m": 30 * DAY, "1w": 7 * DAY, "1d": DAY,
             "6h": 6 * 3600, "1h": 3600}  # fmt: skip
MIN_FIDELITY = {"1w": 5, "1m": 10}
MAX_WINDOW_S = 1_296_000
BATCH_MAX = 20
BUG_216_FIDELITY = 720


def _invalid(message: str) -> ApiError:
    return ApiError(
        400, f"invalid filters: {message}", code="INVALID_FILTERS", retry_after_seconds=0
    )


def _number(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _invalid(f"'{name}' must be a number") from None


def _fidelity(value: Any) -> int:
    number = _number(value, "fidelity")
    if number is None:
        return 1
    if number < 1 or number != int(number):
        raise _invalid("'fidelity' must be a positive integer")
    return int(number)


def resolve_window(
    now: float, interval: str | None, start: float | None, end: float | None, fidelity: int
) -> tuple[float, float]:
    """The (start, end) epoch window a request asks for, validated."""
    if interval or (start is None and end is None):
        name = interval or "max"
        if name not in INTERVALS:
            raise _invalid(f"unknown interval '{name}'")
        if fidelity < MIN_FIDELITY.get(name, 1):
            raise _invalid(f"minimum 'fidelity' for '{name}' range is {MIN_FIDELITY[name]}")
        return now - INTERVALS[name], now
    end = now if end is None else end
    start = end - MAX_WINDOW_S if start is None else start
    if end < start:
        raise _invalid("'startTs' must be before 'endTs'")
    if end - start > MAX_WINDOW_S:
        raise _invalid("'startTs' and 'endTs' interval is too long")
    return start, end


def token_history(
    state: SimState, token_id: str, window: tuple[float, float], fidelity: int
) -> list[dict[str, Any]]:
    found = state.world.token(token_id)
    if found is None:
        return []
    market, is_yes = found
    if (
        state.config.history_bug_216
        and market.result is not Outcome.OPEN
        and fidelity < BUG_216_FIDELITY
    ):
        return []
    stop = min(window[1], state.world.now_s, market.closed_s or window[1])
    start = window[0]
    max_age = state.config.clob_history_max_age_s
    if max_age is not None:
        start = max(start, state.world.now_s - max_age)
    if stop < start:
        return []
    return history_points(market, is_yes, (start, stop), fidelity, state.world.synthetic(market))


async def prices_history(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.sync()
    query = request.query
    token_id = query.get("market")
    if not token_id:
        raise _invalid("'market' is required")
    fidelity = _fidelity(query.get("fidelity"))
    window = resolve_window(
        state.world.now_s, query.get("interval"),
        _number(query.get("startTs"), "startTs"), _number(query.get("endTs"), "endTs"), fidelity,
    )  # fmt: skip
    return json_response({"history": token_history(state, token_id, window, fidelity)})


async def batch_prices_history(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.sync()
    body = await json_body(request)
    markets = body.get("markets") if isinstance(body, dict) else None
    if not isinstance(markets, list) or not markets:
        raise _invalid("'markets' must be a non-empty list of token ids")
    if len(markets) > BATCH_MAX:
        raise _invalid(f"at most {BATCH_MAX} markets per request")
    fidelity = _fidelity(body.get("fidelity"))
    window = resolve_window(
        state.world.now_s, body.get("interval"),
        _number(body.get("start_ts"), "start_ts"), _number(body.get("end_ts"), "end_ts"), fidelity,
    )  # fmt: skip
    history = {str(t): token_history(state, str(t), window, fidelity) for t in markets}
    return json_response({"history": history})
