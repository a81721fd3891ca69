"""The ``polyfarm`` executable, run as a user would, against the session's embedded server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from polyfarm.store.embedded import EmbeddedPostgres, postgres_bin_dir

from .timescale_jobs import BOOM, add_failing_job

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
    assert {t["name"] for t in report["tables"]} >= {"markets", "price_snapshots", "trades"}
    assert report["job_health"]["applicable"] is False
    human = run(embedded_server, "db", "status")
    assert human.returncode == 0, human.stderr
    assert "schema version" in human.stdout
    assert "price_snapshots" in human.stdout
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


@pytest.fixture
async def failing_job(timescale_dsn: str) -> tuple[str, int]:
    """A TimescaleDB database one of whose jobs the scheduler has run and seen fail."""
    conn = await asyncpg.connect(timescale_dsn)
    try:
        return timescale_dsn, await add_failing_job(conn)
    finally:
        await conn.close()


def test_db_status_exits_1_on_a_failing_timescaledb_job(
    embedded_server: EmbeddedPostgres, failing_job: tuple[str, int]
) -> None:
    dsn, job_id = failing_job
    url = {"POLYFARM_DATABASE_URL": dsn, "COLUMNS": "250"}  # one table row per line
    human = run(embedded_server, "db", "status", **url)
    assert human.returncode == 1, human.stderr
    assert f"{job_id} (failing)" in human.stderr
    lines = human.stdout.splitlines()
    summary = next(line for line in lines if line.startswith("background jobs:"))
    assert re.search(r"\b[1-9]\d* failing\b", summary), summary
    row = next(line.split() for line in lines if line.split()[:1] == [str(job_id)])
    assert row[1:3] == ["public.polyfarm_test_boom", "failing"], row
    assert row[-2] == "never", row  # never succeeded
    assert re.fullmatch(r"(\d+)/\1", row[-1]), row  # every run failed
    assert f"  job {job_id}: {BOOM}" in lines
    as_json = run(embedded_server, "db", "status", "--json", **url)
    assert as_json.returncode == 1, as_json.stderr
    report = json.loads(as_json.stdout.strip().splitlines()[-1])["job_health"]
    assert report["applicable"] is True
    assert report["counts"]["failing"] >= 1
    job = next(j for j in report["jobs"] if j["job_id"] == job_id)
    assert (job["state"], job["latest_error"]) == ("failing", BOOM)
