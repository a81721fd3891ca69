"""``/api/tasks``: how every collector task is doing, and its run history."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from polyfarm.api.deps import BIGINT_MAX, NO_NUL, Conn, State
from polyfarm.api.queries.tasks import task_runs, task_statuses
from polyfarm.api.schemas import TaskRuns, TaskStatus

router = APIRouter(prefix="/api", tags=["tasks"])
RunStatus = Literal["running", "success", "failed", "cancelled"]


@router.get("/tasks/status")
async def tasks_status(state: State, conn: Conn) -> list[TaskStatus]:
    """Per task: the newest run, the last success, when the next run is due, and the runs and
    failures of the last 24 hours."""
    return await task_statuses(conn, state.settings, state.now())


@router.get("/tasks/runs")
async def tasks_runs(
    conn: Conn,
    task: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    status: RunStatus | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> TaskRuns:
    """Runs newest first, with duration, markets, rows and error; page with ``before_id``."""
    return await task_runs(conn, task=task, status=status, before_id=before_id, limit=limit)
