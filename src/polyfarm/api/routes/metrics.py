"""``/metrics``: this process's Prometheus registry (API requests; in ``polyfarm demo`` the
collector's families too, as both share one process)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from polyfarm.api.deps import State, require_token
from polyfarm.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    dependencies=[Depends(require_token)],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(state: State) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
