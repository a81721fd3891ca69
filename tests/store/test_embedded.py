from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import pytest

from polyfarm.store.embedded import SERVICE_USER, EmbeddedPostgres


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


async def test_running_server_is_reused_not_started_twice(
    embedded_server: EmbeddedPostgres,
) -> None:
    again = EmbeddedPostgres(embedded_server.data_dir)
    assert again.start() is False
    assert again.dsn() == embedded_server.dsn()
    assert again.state().pid == embedded_server.state().pid


async def test_listens_on_a_unix_socket_only(embedded_server: EmbeddedPostgres) -> None:
    conn = await asyncpg.connect(embedded_server.dsn())
    try:
        assert await conn.fetchval("SHOW listen_addresses") == ""
        assert await conn.fetchval("SELECT inet_server_addr()") is None
    finally:
        await conn.close()


def test_server_never_runs_as_root(embedded_server: EmbeddedPostgres) -> None:
    pid = embedded_server.state().pid
    assert pid is not None
    uid = _uid_of(pid)
    assert uid != 0
    if os.geteuid() == 0:
        assert pwd.getpwuid(uid).pw_name == SERVICE_USER


async def test_stop_and_start_keep_the_data(tmp_path_factory: pytest.TempPathFactory) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="polyfarm-restart-"))
    server = EmbeddedPostgres(data_dir)
    try:
        assert server.start() is True
        conn = await asyncpg.connect(server.dsn())
        await conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
        await conn.close()
        assert server.stop() is True
        assert server.state().running is False
        assert server.stop() is False
        assert server.start() is True
        conn = await asyncpg.connect(server.dsn())
        assert await conn.fetchval("SELECT x FROM kept") == 42
        await conn.close()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_long_data_dir_paths_get_a_short_socket_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = EmbeddedPostgres(deep)
    assert len(str(server.socket_dir / ".s.PGSQL.5432")) <= 100
    assert server.socket_dir != deep / "run"


def _interpreter_for(user: str) -> tuple[str, dict[str, str]]:
    """An interpreter the user can execute, with this checkout and venv on its path.

    The venv's python may link into root's home, which other users cannot enter; a system
    python of the same minor version loads the same compiled wheels.
    """
    import site
    import sysconfig

    for candidate in (
        sys.executable,
        f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}",
    ):
        try:
            subprocess.run(
                [candidate, "-c", "pass"],
                user=user,
                group=user,
                extra_groups=[],
                capture_output=True,
                cwd="/",
                check=True,
            )
        except (OSError, subprocess.CalledProcessError):
            continue
        paths = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
        src = str(Path(__file__).resolve().parents[2] / "src")
        return candidate, {"PYTHONPATH": os.pathsep.join([src, *paths])}
    pytest.skip(f"no Python interpreter here that user {user} may execute")


@pytest.mark.skipif(os.geteuid() != 0, reason="the normal-user path is the one running already")
def test_works_as_a_normal_user() -> None:
    """Run as an unprivileged user: no user switching, the same start/stop lifecycle."""
    interpreter, extra_env = _interpreter_for(SERVICE_USER)
    home = Path(tempfile.mkdtemp(prefix="polyfarm-user-"))
    home.chmod(0o755)
    shutil.chown(home, SERVICE_USER, SERVICE_USER)
    script = (
        "import asyncio, asyncpg, pathlib\n"
        "from polyfarm.store.embedded import EmbeddedPostgres\n"
        f"s = EmbeddedPostgres(pathlib.Path({str(home / 'data')!r}))\n"
        "assert s.start()\n"
        "async def q():\n"
        "    c = await asyncpg.connect(s.dsn())\n"
        "    v = await c.fetchval('SELECT 7')\n"
        "    await c.close()\n"
        "    return v\n"
        "assert asyncio.run(q()) == 7\n"
        "assert s.stop()\n"
        "print('normal user ok')\n"
    )
    try:
        result = subprocess.run(
            [interpreter, "-c", script],
            user=SERVICE_USER,
            group=SERVICE_USER,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "HOME": str(home), **extra_env},
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "normal user ok" in result.stdout
    finally:
        shutil.rmtree(home, ignore_errors=True)
