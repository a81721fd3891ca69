"""``/api/data-quality``: where the holes are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from polyfarm.api.deps import Conn, State
from polyfarm.api.queries.quality import Stream, coverage, gaps
from polyfarm.api.schemas import Coverage, Gaps

router = APIRouter(prefix="/api", tags=["data quality"])


@router.get("/data-quality/coverage")
async def data_coverage(
    state: State,
    conn: Conn,
    stream: Stream = "prices",
    hours: Annotated[int, Query(ge=1, le=168)] = 24,
) -> Coverage:
    """Expected against stored snapshots per tier and hour (see ``queries/quality.py`` for
    what counts as expected)."""
    return await coverage(conn, state.settings, stream, hours, state.now())


@router.get("/data-quality/gaps")
async def data_gaps(
    state: State,
    conn: Conn,
    hours: Annotated[int, Query(ge=1, le=24 * 30)] = 24,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Gaps:
    """Feed gaps recorded by the collectors, newest first, and open markets without a recent
    price snapshot (stale after three price cadences plus a minute, as ``polyfarm status``)."""
    return await gaps(conn, state.settings, hours, limit, state.now())
