"""The ``polyfarm`` executable, run as a user would, against the session's embedded server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from polyfarm.store.embedded import EmbeddedPostgres, postgres_bin_dir

from .timescale_jobs import BOOM, add_failing_job, add_idle_job, clear_jobs

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))


def run(
    embedded: EmbeddedPostgres, *args: str, **env_vars: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env["POLYFARM_DATA_DIR"] = str(embedded.data_dir)
    env.update(env_vars)
    return subprocess.run(
        [POLYFARM, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_db_url_works_with_psql(embedded_server: EmbeddedPostgres) -> None:
    url = run(embedded_server, "db", "url")
    assert url.returncode == 0, url.stderr
    dsn = url.stdout.strip()
    assert dsn == embedded_server.dsn()
    result = subprocess.run(
        [str(postgres_bin_dir() / "psql"), dsn, "-tAc", "SELECT 40 + 2"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"


def test_the_deprecated_compression_days_still_work_and_say_so(
    embedded_server: EmbeddedPostgres,
) -> None:
    result = run(embedded_server, "db", "url", POLYFARM_RETENTION__COMPRESS_AFTER_DAYS="3")
    assert result.returncode == 0, result.stderr
    assert "compress_after_days is deprecated: compressing after 72 hours" in result.stderr


def test_db_migrate_and_status(embedded_server: EmbeddedPostgres) -> None:
    first = run(embedded_server, "db", "migrate")
    assert first.returncode == 0, first.stderr
    second = run(embedded_server, "db", "migrate")
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    status = run(embedded_server, "db", "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout.strip().splitlines()[-1])
    assert report["flavor"] == "plain"
    assert report["pending"] == []
    # The stored tables (the public price_snapshots and trades are views over these).
    assert {t["name"] for t in report["tables"]} >= {"markets", "price_points", "trade_fills"}
    assert report["job_health"]["applicable"] is False
    human = run(embedded_server, "db", "status")
    assert human.returncode == 0, human.stderr
    assert "schema version" in human.stdout
    assert "price_points" in human.stdout
    assert "background jobs: not applicable" in human.stdout


def test_db_start_reuses_and_bad_config_fails_clearly(
    embedded_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    start = run(embedded_server, "db", "start")
    assert start.returncode == 0, start.stderr
    assert "already running" in start.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers: {t4_interval_s: -1}\n")
    failed = run(embedded_server, "--config", str(bad), "db", "url")
    assert failed.returncode != 0
    assert "invalid settings" in failed.stderr


async def with_jobs(dsn: str, add: Callable[[asyncpg.Connection], Awaitable[int]]) -> int:
    """Replace every job of the database with one of the test's own."""
    conn = await asyncpg.connect(dsn)
    try:
        await clear_jobs(conn)
        return await add(conn)
    finally:
        await conn.close()


def status_of(embedded: EmbeddedPostgres, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Wide enough for one table row per line.
    return run(embedded, "db", "status", *args, POLYFARM_DATABASE_URL=dsn, COLUMNS="200")


def summary_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("background jobs:"))


async def test_db_status_exits_0_when_every_timescaledb_job_works(
    embedded_server: EmbeddedPostgres, timescale_dsn: str
) -> None:
    job_id = await with_jobs(timescale_dsn, add_idle_job)
    human = status_of(embedded_server, timescale_dsn)
    assert human.returncode == 0, human.stderr
    assert summary_line(human.stdout) == "background jobs: 1 (0 failing, 0 overdue, 0 paused, 1 ok)"
    row = next(
        line.split() for line in human.stdout.splitlines() if line.split()[:1] == [str(job_id)]
    )
    assert row[1:] == ["public.polyfarm_test_idle", "ok", "never", "never", "0/0"]
    assert "latest errors" not in human.stdout


async def test_db_status_exits_1_on_a_failing_timescaledb_job(
    embedded_server: EmbeddedPostgres, timescale_dsn: str
) -> None:
    job_id = await with_jobs(timescale_dsn, add_failing_job)
    human = status_of(embedded_server, timescale_dsn)
    assert human.returncode == 1, human.stderr
    assert f"background jobs not healthy: {job_id} (failing)" in human.stderr
    lines = human.stdout.splitlines()
    assert summary_line(human.stdout) == "background jobs: 1 (1 failing, 0 overdue, 0 paused, 0 ok)"
    row = next(line.split() for line in lines if line.split()[:1] == [str(job_id)])
    assert row[1:3] == ["public.polyfarm_test_boom", "failing"], row
    assert row[-2] == "never", row  # never succeeded
    assert re.fullmatch(r"(\d+)/\1", row[-1]), row  # every run failed
    assert f"  job {job_id}: {BOOM}" in lines
    as_json = status_of(embedded_server, timescale_dsn, "--json")
    assert as_json.returncode == 1, as_json.stderr
    report = json.loads(as_json.stdout.strip().splitlines()[-1])["job_health"]
    assert report["applicable"] is True
    assert report["counts"] == {"failing": 1, "overdue": 0, "paused": 0, "ok": 0}
    (job,) = report["jobs"]
    assert (job["job_id"], job["state"], job["latest_error"]) == (job_id, "failing", BOOM)
