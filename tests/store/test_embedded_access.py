"""Only the owner reaches the embedded PostgreSQL, its log, its password file and the journal.

Another local user is played by ``nobody`` (so these tests need root, as the suite runs here).
A cluster left by an older polyfarm (trust authentication, a world-writable socket, a
world-readable log) is recreated here as it was and must be locked down at the next start,
whether it is running at that moment or not, with its data intact.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from polyfarm.errors import EmbeddedDatabaseError
from polyfarm.store.database import dsn_with_user
from polyfarm.store.embedded import PORT, SERVICE_USER, EmbeddedPostgres, postgres_bin_dir
from polyfarm.store.embedded_access import READER_ROLE
from polyfarm.store.journal import Journal
from polyfarm.store.migrations import migrate

OTHER_USER = "nobody"
NO_PASSFILE = "/nonexistent/pgpass"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="playing another user needs root")


def as_other_user(*argv: str) -> subprocess.CompletedProcess[str]:
    entry = pwd.getpwnam(OTHER_USER)
    return subprocess.run(
        list(argv),
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/", "PGCONNECT_TIMEOUT": "5"},
        check=False,
    )


def other_user_psql(dsn: str, sql: str = "SELECT 'in'") -> subprocess.CompletedProcess[str]:
    return as_other_user(str(postgres_bin_dir() / "psql"), "-X", "-tA", dsn, "-c", sql)


def assert_other_user_is_shut_out(server: EmbeddedPostgres) -> None:
    for dsn in (server.dsn(), dsn_with_user(server.dsn(), READER_ROLE)):
        attempt = other_user_psql(dsn, "COPY (SELECT 1) TO PROGRAM 'id'")
        assert attempt.returncode != 0, f"{OTHER_USER} got in as {dsn}: {attempt.stdout}"
        assert "uid=" not in attempt.stdout + attempt.stderr
    for path in (server.log_file, server.passfile, server.pgdata / "pg_hba.conf"):
        read = as_other_user("cat", str(path))
        assert read.returncode != 0, f"{OTHER_USER} read {path}"
    assert as_other_user("ls", str(server.data_dir)).returncode != 0
    assert stat.S_IMODE(server.socket_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(server.log_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.passfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.data_dir.stat().st_mode) & 0o007 == 0
    assert "trust" not in (server.pgdata / "pg_hba.conf").read_text()


@pytest.fixture
def private_data_dir() -> Iterator[Path]:
    data_dir = Path(tempfile.mkdtemp(prefix="polyfarm-access-"))
    try:
        yield data_dir
    finally:
        EmbeddedPostgres(data_dir).stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_another_user_cannot_reach_the_database_log_or_journal(
    embedded_server: EmbeddedPostgres,
) -> None:
    assert_other_user_is_shut_out(embedded_server)
    journal = Journal(embedded_server.data_dir / "journal", max_bytes=1 << 20)
    journal.append("trades", ["price"], [[0.5]])
    for segment in journal.segments():
        assert stat.S_IMODE(segment.stat().st_mode) == 0o600
        assert as_other_user("cat", str(segment)).returncode != 0
    assert as_other_user("ls", str(journal.directory)).returncode != 0
    assert stat.S_IMODE(journal.directory.stat().st_mode) == 0o700


async def test_the_owner_and_the_reader_role_still_get_in(
    embedded_server: EmbeddedPostgres,
) -> None:
    owner = await asyncpg.connect(embedded_server.dsn())
    try:
        assert await owner.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    finally:
        await owner.close()
    reader = await asyncpg.connect(dsn_with_user(embedded_server.dsn(), READER_ROLE))
    try:
        assert await reader.fetchval("SELECT current_user") == READER_ROLE
    finally:
        await reader.close()
    # Without the password file, the reader role is refused: no trust anywhere.
    bare = dsn_with_user(embedded_server.dsn(), READER_ROLE).split("&passfile=")[0]
    with pytest.raises(
        (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
    ):
        await asyncpg.connect(bare, passfile=NO_PASSFILE)


def test_authentication_holds_even_with_the_socket_left_open(private_data_dir: Path) -> None:
    """Second lock: were the socket reachable, peer and SCRAM authentication still refuse."""
    server = EmbeddedPostgres(private_data_dir)
    server.start()
    for path in (server.data_dir, server.socket_dir, server.socket_dir / f".s.PGSQL.{PORT}"):
        path.chmod(0o777)
    superuser = other_user_psql(server.dsn())
    assert superuser.returncode != 0
    assert "Peer authentication failed" in superuser.stderr
    reader = other_user_psql(dsn_with_user(server.dsn(), READER_ROLE))
    assert reader.returncode != 0
    assert "password" in reader.stderr
    server.start()  # the next start closes what was opened
    assert_other_user_is_shut_out(server)


# -- clusters left by an older polyfarm -----------------------------------------------------


def legacy_run(*argv: str, stdin: str | None = None) -> None:
    """Run a PostgreSQL binary as the service user, as the older polyfarm did."""
    subprocess.run(
        [str(postgres_bin_dir() / argv[0]), *argv[1:]],
        user=SERVICE_USER,
        group=SERVICE_USER,
        extra_groups=[],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        check=True,
    )


def start_legacy_server(data_dir: Path) -> EmbeddedPostgres:
    """Directories, cluster and server exactly as polyfarm 0.1 made them."""
    server = EmbeddedPostgres(data_dir)
    entry = pwd.getpwnam(SERVICE_USER)
    for path in (server.pgdata, server.socket_dir):
        path.mkdir(parents=True)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    server.log_file.touch(mode=0o644)
    os.chown(server.log_file, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o755)
    server.pgdata.chmod(0o700)
    server.socket_dir.chmod(0o755)
    legacy_run("initdb", "-D", str(server.pgdata), "-U", "postgres", "--auth=trust")
    options = f"-c listen_addresses='' -k {server.socket_dir} -p {PORT}"
    legacy_run("pg_ctl", "-D", str(server.pgdata), "-l", str(server.log_file), "-o", options,
               "-w", "start")  # fmt: skip
    return server


async def make_legacy_cluster(data_dir: Path) -> EmbeddedPostgres:
    """A running cluster laid out as polyfarm 0.1 made it: trust authentication, the socket
    0777 in a 0755 directory, a 0644 log, the reader role without a password; with data."""
    server = start_legacy_server(data_dir)
    legacy_dsn = f"postgresql://postgres@/postgres?host={server.socket_dir}&port={PORT}"
    conn = await asyncpg.connect(legacy_dsn)
    await conn.execute("CREATE DATABASE polyfarm")
    await conn.close()
    conn = await asyncpg.connect(legacy_dsn.replace("/postgres?", "/polyfarm?"))
    await migrate(conn)
    await conn.execute("INSERT INTO events (event_id, title) VALUES ('kept', 'user data')")
    await conn.close()
    assert stat.S_IMODE((server.socket_dir / f".s.PGSQL.{PORT}").stat().st_mode) == 0o777
    assert other_user_psql(legacy_dsn).stdout.strip() == "in", "the legacy hole is reproduced"
    return server


async def assert_upgraded_with_data_intact(server: EmbeddedPostgres) -> None:
    assert_other_user_is_shut_out(server)
    owner = await asyncpg.connect(server.dsn())
    try:
        assert await owner.fetchval("SELECT title FROM events WHERE event_id = 'kept'") == (
            "user data"
        )
    finally:
        await owner.close()
    reader = await asyncpg.connect(dsn_with_user(server.dsn(), READER_ROLE))
    try:
        assert await reader.fetchval("SELECT count(*) FROM events") == 1
    finally:
        await reader.close()


async def test_a_stopped_legacy_cluster_is_locked_down_at_start(private_data_dir: Path) -> None:
    legacy = await make_legacy_cluster(private_data_dir)
    legacy_run("pg_ctl", "-D", str(legacy.pgdata), "-m", "fast", "-w", "stop")
    server = EmbeddedPostgres(private_data_dir)
    assert server.start() is True
    await assert_upgraded_with_data_intact(server)


async def test_a_running_legacy_cluster_is_locked_down_without_a_restart(
    private_data_dir: Path,
) -> None:
    legacy = await make_legacy_cluster(private_data_dir)
    pid = legacy.state().pid
    server = EmbeddedPostgres(private_data_dir)
    assert server.start() is False, "a running server is reused, not restarted"
    assert server.state().pid == pid
    # The reload is asynchronous: wait until the old trust rules are gone.
    bare = f"postgresql://{READER_ROLE}@/polyfarm?host={server.socket_dir}&port={PORT}"
    for _ in range(50):
        try:
            conn = await asyncpg.connect(bare, passfile=NO_PASSFILE)
        except asyncpg.PostgresError:
            break
        await conn.close()
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the reader role still gets in without a password")
    await assert_upgraded_with_data_intact(server)
    # Restarted, the server applies the socket permissions itself.
    server.stop()
    assert server.start() is True
    await assert_upgraded_with_data_intact(server)


def test_a_socket_directory_planted_by_another_user_is_refused() -> None:
    """Long data paths put the socket in the shared temporary directory, under a predictable
    name: a directory (or link) someone else made there first is not used."""
    top = Path(tempfile.mkdtemp(prefix="polyfarm-planted-"))
    server = EmbeddedPostgres(top / ("d" * 60) / ("e" * 60))
    planted = server.socket_dir
    assert planted.parent == Path(tempfile.gettempdir())
    shutil.rmtree(planted, ignore_errors=True)
    planted.mkdir()
    entry = pwd.getpwnam(OTHER_USER)
    os.chown(planted, entry.pw_uid, entry.pw_gid)
    try:
        with pytest.raises(EmbeddedDatabaseError, match="belongs to another user"):
            server.start()
        assert not server.state().running
        planted.rmdir()
        planted.symlink_to(top)
        with pytest.raises(EmbeddedDatabaseError, match="is a link"):
            server.start()
    finally:
        server.stop()
        if planted.is_symlink():
            planted.unlink()
        shutil.rmtree(planted, ignore_errors=True)
        shutil.rmtree(top, ignore_errors=True)


def test_a_shared_data_directory_keeps_its_mode_and_ours_stay_private(
    private_data_dir: Path,
) -> None:
    """POLYFARM_DATA_DIR may name a directory that is not only ours (a home, even /): its
    mode is not ours to change, and every entry of ours is private on its own."""
    private_data_dir.chmod(0o755)
    (private_data_dir / "notes.txt").write_text("someone else's")
    server = EmbeddedPostgres(private_data_dir)
    server.start()
    assert stat.S_IMODE(private_data_dir.stat().st_mode) == 0o755
    for path in (server.log_file, server.passfile, server.pgdata / "pg_hba.conf"):
        assert as_other_user("cat", str(path)).returncode != 0, path
    for path in (server.pgdata, server.socket_dir):
        assert as_other_user("ls", str(path)).returncode != 0, path
    assert other_user_psql(server.dsn()).returncode != 0
    assert as_other_user("cat", str(private_data_dir / "notes.txt")).stdout == "someone else's"
