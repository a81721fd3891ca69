"""``polyfarm db backup`` / ``polyfarm db restore``: a populated database backed up, restored into
a new one, and found equal table by table and aggregate by aggregate, on the embedded server and
on TimescaleDB; and the pure parts (names, retention, archive contents, passwords)."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from polyfarm.errors import BackupError
from polyfarm.settings import Settings
from polyfarm.store.backup import (
    archive_has_timescaledb,
    backup_name,
    backup_names,
    expired,
    libpq_target,
)
from polyfarm.store.database import create_pool, migrate_database
from polyfarm.store.embedded import EmbeddedPostgres
from polyfarm.store.maintenance import AGGREGATE_VIEWS
from polyfarm.store.restore import _copy_without, pipe

from ..api.farm import fill_farm
from ..conftest import Server

# -- pure parts ----------------------------------------------------------------------------


def test_names_sort_as_times_and_retention_keeps_the_newest() -> None:
    names = [backup_name(datetime(2026, 1, day, 3, 0, tzinfo=UTC)) for day in (3, 1, 2)]
    assert names[1] == "polyfarm-20260101T030000Z.dump"
    others = ["notes.txt", ".polyfarm-20260104T030000Z.dump.partial", "polyfarm-latest.dump"]
    assert backup_names([*names, *others]) == sorted(names)
    assert expired([*names, *others], keep=2) == ["polyfarm-20260101T030000Z.dump"]
    assert expired(names, keep=3) == []
    assert expired(others, keep=1) == [], "files that are not backups are never deleted"


def test_the_timescaledb_extension_is_found_in_a_table_of_contents() -> None:
    toc = (
        ";\n; Archive created at 2026-12-07 05:16:52 UTC\n"
        "2; 3079 16385 EXTENSION - timescaledb \n"
        "4517; 0 0 COMMENT - EXTENSION timescaledb \n"
    )
    assert archive_has_timescaledb(toc)
    assert not archive_has_timescaledb("4517; 0 0 COMMENT - EXTENSION timescaledb \n")
    assert not archive_has_timescaledb("5; 1259 16400 TABLE public timescaledb_notes postgres\n")


def test_a_password_travels_in_the_environment_never_on_the_command_line() -> None:
    dsn, env = libpq_target("postgresql://farm:s%40cret@db.example:5432/polyfarm?sslmode=require")
    assert "cret" not in dsn
    assert env == {"PGPASSWORD": "s@cret"}
    assert dsn == "postgresql://farm@db.example:5432/polyfarm?sslmode=require"
    plain = "postgresql://postgres@/polyfarm?host=/run/x&port=5432&passfile=/x/pgpass"
    assert libpq_target(plain) == (plain, {})


def test_settings_an_older_server_refuses_are_left_out_of_the_script() -> None:
    script = b"SET statement_timeout = 0;\nSET transaction_timeout = 0;\nCOPY t FROM stdin;\n"
    out = io.BytesIO()
    _copy_without(io.BytesIO(script), out, {b"SET transaction_timeout = 0;"})
    assert out.getvalue() == b"SET statement_timeout = 0;\nCOPY t FROM stdin;\n"


def test_a_failing_side_of_the_pipe_is_named_with_its_error() -> None:
    with pytest.raises(BackupError, match=r"sh failed \(exit 3\): no such table"):
        pipe(
            ["echo", "SELECT 1;"],
            ["sh", "-c", "cat >/dev/null; echo no such table >&2; exit 3"],
            {},
            set(),
        )
    pipe(["echo", "SELECT 1;"], ["sh", "-c", "cat >/dev/null"], {}, set())


# -- round trips ---------------------------------------------------------------------------

RELATIONS = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
ORDER BY 1
"""
CONTINUOUS_AGGREGATES = """
SELECT view_name FROM timescaledb_information.continuous_aggregates
WHERE view_schema = 'public' ORDER BY 1
"""


@pytest.fixture
def server_tmp() -> Iterator[Path]:
    """A scratch directory the embedded servers can reach: as root they run as another user,
    who cannot pass through pytest's private ``tmp_path``."""
    top = Path(tempfile.mkdtemp(prefix="polyfarm-backup-"))
    top.chmod(0o711)
    yield top
    shutil.rmtree(top, ignore_errors=True)


async def fingerprint(dsn: str) -> dict[str, tuple[int, str]]:
    """Per table, materialized view and continuous aggregate: its row count and an MD5 of all
    its rows in a fixed order."""
    conn = await asyncpg.connect(dsn)
    try:
        names = [r["relname"] for r in await conn.fetch(RELATIONS)]
        if await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"):
            names += [r["view_name"] for r in await conn.fetch(CONTINUOUS_AGGREGATES)]
        found = {}
        for name in names:
            row = await conn.fetchrow(
                f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, E'\\n' "
                f"ORDER BY t::text), '')) AS digest FROM public.{name} t"
            )
            found[name] = (row["n"], row["digest"])
        return found
    finally:
        await conn.close()


async def materialize_everything(dsn: str) -> None:
    """Every continuous aggregate refreshed over all its rows, lowest level first. Otherwise a
    refresh policy that runs on one side only (the source after its fingerprint, the copy after
    its restore) brings that side's hierarchical candles up to date and the two differ, row
    counts equal, though nothing was lost."""
    conn = await asyncpg.connect(dsn)
    try:
        for view in AGGREGATE_VIEWS:
            for attempt in range(50):  # a policy job may be refreshing the same aggregate
                try:
                    await conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
                    break
                except asyncpg.LockNotAvailableError:
                    if attempt == 49:
                        raise
                    await asyncio.sleep(0.2)
    finally:
        await conn.close()


def polyfarm(*args: str, **env: str) -> str:
    """Run the command line as an operator would; its stdout (a failure shows its stderr)."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("POLYFARM_")}
    result = subprocess.run(
        [sys.executable, "-m", "polyfarm.cli", *args],
        capture_output=True,
        text=True,
        env={**base, "POLYFARM_METRICS_PORT": "0", **env},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_populated(tables: dict[str, tuple[int, str]]) -> None:
    for name in ("markets", "tokens", "trade_fills", "price_points", "task_runs", "trade_flow_1h"):
        assert tables[name][0] > 0, f"{name} is empty: the round trip would prove little"


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_an_embedded_database_backed_up_restores_equal_into_a_new_one(
    tmp_path: Path, server_tmp: Path
) -> None:
    source_dir, target_dir, lake = server_tmp / "a", server_tmp / "b", tmp_path / "lake"
    source = EmbeddedPostgres(source_dir)
    await asyncio.to_thread(source.start)
    try:
        pool = await create_pool(source.dsn(), min_size=1, max_size=2)
        try:
            await migrate_database(pool, Settings(data_dir=source_dir))
        finally:
            await pool.close()
        await fill_farm(source.dsn(), tmp_path / "farm")
        before = await fingerprint(source.dsn())
        out = await asyncio.to_thread(
            polyfarm,
            "db",
            "backup",
            "--upload",
            POLYFARM_DATA_DIR=str(source_dir),
            POLYFARM_LAKE__URL=str(lake),
        )
        assert "uploaded:" in out
    finally:
        await asyncio.to_thread(source.stop)
    (name,) = backup_names(path.name for path in (lake / "backups").iterdir())
    target = EmbeddedPostgres(target_dir)
    try:
        out = await asyncio.to_thread(
            polyfarm,
            "db",
            "restore",
            name,
            "--from-lake",
            POLYFARM_DATA_DIR=str(target_dir),
            POLYFARM_LAKE__URL=str(lake),
        )
        assert f"restored {target_dir / 'backups' / name}" in out
        after = await fingerprint(target.dsn())
        reader = await asyncpg.connect(target.dsn())
        try:
            readable = await reader.fetchval(
                "SELECT has_table_privilege('polyfarm_reader', 'trades', 'SELECT')"
            )
        finally:
            await reader.close()
    finally:
        await asyncio.to_thread(target.stop)
    assert_populated(before)
    assert after == before
    assert readable, "the API's read-only role reads the restored tables"


# The system's client (as new as the server), or only the embedded wheel's (newer than the
# server: its restore goes through psql without the settings the server does not know).
CLIENTS = {"system client": None, "wheel client only": str(Path(sys.executable).parent)}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("client", CLIENTS)
async def test_a_timescaledb_database_restores_equal_between_its_pre_and_post_restore_steps(
    timescale_dsn: str, timescale_server: Server, tmp_path: Path, client: str
) -> None:
    path = CLIENTS[client]
    if path is None and shutil.which("pg_dump") is None:
        pytest.skip("SKIPPED: no pg_dump on PATH (Debian's postgresql-client)")
    paths = {} if path is None else {"PATH": path}
    await fill_farm(timescale_dsn, tmp_path / "farm")
    await materialize_everything(timescale_dsn)
    before = await fingerprint(timescale_dsn)
    out = await asyncio.to_thread(
        polyfarm,
        "db",
        "backup",
        "--dir",
        str(tmp_path / "backups"),
        POLYFARM_DATABASE_URL=timescale_dsn,
        **paths,
    )
    assert "TimescaleDB" in out
    (archive,) = (tmp_path / "backups").iterdir()
    restored = f"t_restore_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(timescale_server.admin_dsn)
    await admin.execute(f"CREATE DATABASE {restored}")
    try:
        dsn = timescale_server.dsn_for(restored)
        out = await asyncio.to_thread(
            polyfarm, "db", "restore", str(archive), POLYFARM_DATABASE_URL=dsn, **paths
        )
        assert "(TimescaleDB)" in out
        after = await fingerprint(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            restoring = await conn.fetchval("SHOW timescaledb.restoring")
            hypertables = await conn.fetchval(
                "SELECT count(*) FROM timescaledb_information.hypertables"
            )
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {restored} WITH (FORCE)")
        await admin.close()
    assert_populated(before)
    assert after == before
    assert restoring == "off", "timescaledb_post_restore() ran"
    assert hypertables > 0
