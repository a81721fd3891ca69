"""``/api/stats``: the dashboard's headline numbers."""

from __future__ import annotations

from fastapi import APIRouter

from polyfarm.api.deps import Conn, State
from polyfarm.api.queries.overview import read_stats
from polyfarm.api.schemas import Stats

router = APIRouter(prefix="/api", tags=["stats"])


@router.get("/stats")
async def stats(state: State, conn: Conn) -> Stats:
    """Markets by tier, snapshots and trades since 00:00 UTC, database size, and every table's
    row count and newest row: the same figures as ``polyfarm stats --json``."""
    return await read_stats(conn, state.now())
