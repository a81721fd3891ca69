"""What a request handler may depend on: the app's state, a read-only connection, the token.

Everything lives on ``app.state`` (set by the lifespan in ``app.py``), never in module globals.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from polyfarm.api.probe import CollectorProbe
from polyfarm.clock import Clock
from polyfarm.logs import get_logger
from polyfarm.metrics import Metrics
from polyfarm.settings import Settings


@dataclass(frozen=True)
class ApiState:
    settings: Settings
    pool: asyncpg.Pool
    metrics: Metrics
    probe: CollectorProbe
    started_at: datetime
    clock: Clock
    version: str

    def now(self) -> datetime:
        return self.clock()


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(api_state)]


async def read_only_connection(state: State) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection inside a READ ONLY transaction: the API never writes."""
    async with state.pool.acquire() as conn, conn.transaction(readonly=True):
        yield conn


Conn = Annotated[asyncpg.Connection, Depends(read_only_connection)]

_bearer = HTTPBearer(auto_error=False, description="api.token, when one is configured")
log = get_logger(__name__)
# Text parameters go to PostgreSQL, whose text type cannot hold a NUL character: refused by
# validation (422) instead of failing in the database.
NO_NUL = r"^[^\x00]*$"
BIGINT_MAX = 2**63 - 1


def require_token(
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Open when ``api.token`` is unset; otherwise ``Authorization: Bearer <token>``."""
    token = state.settings.api.token
    if token is None:
        return
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        # Logged without what was sent: a near-miss token is still a secret.
        log.warning(
            "request refused: missing or wrong bearer token",
            path=request.url.path,
            client=request.client.host if request.client else None,
            sent_token=credentials is not None,
        )
        raise HTTPException(
            status_code=401,
            detail="a bearer token is required (api.token)",
            headers={"WWW-Authenticate": "Bearer"},
        )
