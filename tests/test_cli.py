"""The ``polyfarm`` executable, run as a user would, against the session's embedded server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from polyfarm.store.embedded import EmbeddedPostgres, postgres_bin_dir

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))


def run(embedded: EmbeddedPostgres, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
    env["POLYFARM_DATA_DIR"] = str(embedded.data_dir)
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
    human = run(embedded_server, "db", "status")
    assert "schema version" in human.stdout
    assert "price_snapshots" in human.stdout


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
