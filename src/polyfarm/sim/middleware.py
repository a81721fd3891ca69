"""HTTP middlewares: API error rendering, rate limiting and fault injection.

Order per request to a simulated API: rate-limit buckets → latency → timeout / 429 / 5xx /
200-with-error short-circuits → handler → body faults (malformed, truncated, missing or extra
fields) on successful JSON answers. Control routes (``/_sim``) are never faulted or limited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from polyfarm.sim.faults import FaultController
from polyfarm.sim.httputil import JSON, ApiError, api_of, api_path, error_body, json_response
from polyfarm.sim.ratelimit import RateLimiter, buckets_for

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOO_MANY = {"error": "Too Many Requests"}
SERVER_ERRORS = {
    500: (JSON, b'{"error":"Internal Server Error"}'),
    502: ("text/html", b"<html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>"),
    503: (JSON, b'{"error":"Service Unavailable"}'),
    504: ("text/html", b"<html><body><h1>504 Gateway Time-out</h1>cloudflare</body></html>"),
}


def error_middleware() -> Any:
    @web.middleware
    async def render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            api = api_of(request.path) or "clob"
            return json_response(error_body(api, error), error.status)

    return render_errors


def too_many_requests(retry_after: float) -> web.Response:
    return json_response(TOO_MANY, 429, {"Retry-After": str(int(retry_after))})


async def _short_circuit(faults: FaultController, api: str) -> web.StreamResponse | None:
    latency_ms = faults.param("latency_ms", api)
    if latency_ms > 0:
        faults.count("latency_ms")
        await asyncio.sleep(latency_ms / 1000 * faults.uniform(0.5, 1.5))
    if faults.roll("timeout", api):
        await asyncio.sleep(faults.param("timeout_s", api))
        return web.Response(status=504, text="error code: 524")
    if faults.roll("http_429", api):
        return too_many_requests(faults.param("retry_after_s", api))
    if faults.roll("http_5xx", api):
        status = int(faults.choice(["500", "502", "503", "504"]))
        content_type, body = SERVER_ERRORS[status]
        return web.Response(status=status, body=body, content_type=content_type)
    if api != "ws" and faults.roll("http_200_error", api):
        return json_response(TOO_MANY, 200)
    return None


def _drop_key(value: Any, faults: FaultController) -> Any:
    if isinstance(value, dict) and value:
        victim = faults.choice(sorted(value))
        return {k: v for k, v in value.items() if k != victim}
    if isinstance(value, list):
        return [_drop_key(item, faults) for item in value]
    return value


def _add_key(value: Any) -> Any:
    if isinstance(value, dict):
        return {**value, "simUnexpectedField": {"note": "extra field injected by the simulator"}}
    if isinstance(value, list):
        return [_add_key(item) for item in value]
    return value


def _mutate_body(faults: FaultController, api: str, body: bytes) -> bytes | None:
    if faults.roll("malformed_json", api):
        middle = len(body) // 2
        return body[:middle] + b"\x00<" + body[middle:]
    if faults.roll("truncated_json", api):
        return body[: max(len(body) // 2, 1)]
    if faults.roll("missing_fields", api):
        return orjson.dumps(_drop_key(orjson.loads(body), faults))
    if faults.roll("extra_fields", api):
        return orjson.dumps(_add_key(orjson.loads(body)))
    return None


def _body_faults(
    faults: FaultController, api: str, response: web.StreamResponse
) -> web.StreamResponse:
    if not isinstance(response, web.Response) or response.status != 200:
        return response
    if response.content_type != JSON or not isinstance(response.body, bytes):
        return response
    mutated = _mutate_body(faults, api, response.body)
    if mutated is None:
        return response
    headers = {
        k: v
        for k, v in response.headers.items()
        if k.lower() not in ("content-length", "content-type")
    }
    return web.Response(body=mutated, status=200, headers=headers, content_type=JSON)


def fault_middleware(
    faults: FaultController, limiter: RateLimiter, counters: dict[str, int]
) -> Any:
    @web.middleware
    async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
        api = api_of(request.path)
        if api is None:
            return await handler(request)
        counters["http_requests"] = counters.get("http_requests", 0) + 1
        retry = limiter.check(
            buckets_for(api, api_path(request.path, api)), faults.rate_limit_scale
        )
        if retry is not None:
            faults.count("rate_limit")
            return too_many_requests(retry)
        early = await _short_circuit(faults, api)
        if early is not None:
            return early
        response = await handler(request)
        return response if api == "ws" else _body_faults(faults, api, response)

    return inject
