"""Small HTTP helpers shared by the route modules: JSON responses, API errors, query parsing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

JSON = "application/json"


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return raw_json(orjson.dumps(body), status, headers)


def raw_json(
    payload: bytes | str, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    data = payload.encode() if isinstance(payload, str) else payload
    return web.Response(body=data, status=status, headers=headers, content_type=JSON)


class ApiError(Exception):
    """An error answer; the error middleware renders it in the API's own body style."""

    def __init__(self, status: int, message: str, kind: str = "validation", **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.extra = extra


def error_body(api: str, error: ApiError) -> dict[str, Any]:
    """Gamma: ``{"type":"<kind> error","error":…}``; CLOB and Data API: ``{"error":…}``."""
    if api == "gamma":
        return {"type": f"{error.kind} error", "error": error.message}
    return {"error": error.message, **error.extra}


def api_of(path: str) -> str | None:
    """Which simulated API a request path belongs to (None for control routes)."""
    for api in ("gamma", "clob", "data"):
        if path == f"/{api}" or path.startswith(f"/{api}/"):
            return api
    if path.startswith("/ws/"):
        return "ws"
    return None


def api_path(path: str, api: str) -> str:
    """The path relative to the API's base (``/gamma/markets`` → ``/markets``)."""
    return path[len(api) + 1 :] or "/"


def query_bool(query: Mapping[str, str], name: str, default: bool, status: int = 422) -> bool:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ApiError(status, f"invalid boolean for {name}: {raw!r}")


def query_int(query: Mapping[str, str], name: str, default: int, status: int = 422) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(status, f"invalid integer for {name}: {raw!r}") from None


def query_float(query: Mapping[str, str], name: str, status: int = 400) -> float | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise ApiError(status, f"invalid number for {name}: {raw!r}") from None


async def json_body(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise ApiError(400, "Invalid payload") from None
