"""A database that is away is logged once per outage, with a cause an operator can read."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from structlog.testing import capture_logs

from polyfarm.logs import get_logger
from polyfarm.store.outage import OutageLog, database_unavailable, outage_cause


async def refused_by_a_stopped_server(tmp_path: Path) -> BaseException:
    """The error asyncpg raises for an embedded server whose socket is gone."""
    dsn = f"postgresql://postgres@/polyfarm?host={tmp_path}&port=5432"
    with pytest.raises(FileNotFoundError) as caught:
        await asyncpg.connect(dsn, timeout=5)
    return caught.value


async def test_a_stopped_server_reads_as_stopped(tmp_path: Path) -> None:
    exc = await refused_by_a_stopped_server(tmp_path)
    assert database_unavailable(exc)
    assert "database is stopped" in outage_cause(exc)


async def test_one_warning_per_outage_and_one_line_when_back(tmp_path: Path) -> None:
    exc = await refused_by_a_stopped_server(tmp_path)
    outage = OutageLog("stream chores", get_logger("test"))
    with capture_logs() as logs:
        for _ in range(30):
            assert outage.failed(exc, chore="whales")
        assert outage.in_outage
        assert outage.failures == 30
        outage.succeeded()
        outage.succeeded()  # no outage now: nothing to say
        assert outage.failed(exc)  # a second outage is announced again
    events = [(entry["log_level"], entry["event"]) for entry in logs]
    assert events == [
        ("warning", "database unavailable: stream chores wait for it"),
        ("info", "database back: stream chores resumed"),
        ("warning", "database unavailable: stream chores wait for it"),
    ]
    assert logs[0]["chore"] == "whales"
    assert logs[1]["failures"] == 30


def test_errors_that_are_not_an_outage_are_left_to_the_caller() -> None:
    outage = OutageLog("task-run records", get_logger("test"))
    with capture_logs() as logs:
        assert not outage.failed(asyncpg.UniqueViolationError("duplicate key"))
        assert not outage.failed(ValueError("a bug"))
    assert logs == []
    assert not outage.in_outage
