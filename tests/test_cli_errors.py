"""Ordinary mistakes give one clear line and a non-zero exit, never a traceback.

Every command that talks to the database is run against every kind of unusable
``POLYFARM_DATABASE_URL`` (nothing listening, no socket, a malformed URL, a wrong scheme, an
unknown role or database); the password in the URL never shows. Hostile or wrong settings
files are refused the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner

from polyfarm.cli import cli
from polyfarm.store.embedded import EmbeddedPostgres

from .support import BILLION_LAUGHS

POLYFARM = str(Path(sys.executable).with_name("polyfarm"))
SECRET = "hunter2"
COMMANDS = [
    ["db", "status"],
    ["db", "migrate"],
    ["status"],
    ["stats"],
    ["collect", "--once", "--ws-seconds", "0"],
    ["serve", "--port", "0"],
]
UNREACHABLE = {
    "closed port": f"postgresql://u:{SECRET}@127.0.0.1:1/db",
    "missing socket": f"postgresql://u:{SECRET}@/db?host=/nonexistent/socket/dir",
    "bad port": f"postgresql://u:{SECRET}@localhost:abc/db",
    "unclosed bracket": f"postgresql://u:{SECRET}@[::1/db",
    "wrong scheme": f"mysql://u:{SECRET}@localhost/db",
    "port out of range": f"postgresql://u:{SECRET}@localhost:99999/db",
}


def with_user_and_database(dsn: str, user: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(netloc=f"{user}:{SECRET}@", path=f"/{database}"))


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("POLYFARM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("POLYFARM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("POLYFARM_METRICS_PORT", "0")
    monkeypatch.setenv("POLYFARM_LOG_JSON", "true")


def assert_one_clear_line(args: list[str], env: dict[str, str], *needles: str) -> None:
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code != 0, (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args} raised {result.exception!r}"
    )
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, (args, result.output)
    assert SECRET not in result.output
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("case", sorted(UNREACHABLE))
def test_an_unusable_database_url_is_one_line(command: list[str], case: str) -> None:
    assert_one_clear_line(command, {"POLYFARM_DATABASE_URL": UNREACHABLE[case]}, "database")


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("who", ["role", "database"])
def test_a_refused_login_is_one_line(
    embedded_server: EmbeddedPostgres, command: list[str], who: str
) -> None:
    user, database = ("polyfarm_nobody", "polyfarm") if who == "role" else ("postgres", "nodb")
    dsn = with_user_and_database(embedded_server.dsn(), user, database)
    env = {"POLYFARM_DATABASE_URL": dsn}
    if command[0] == "serve":
        # serve reads as polyfarm_reader whatever the main login: its own login is the one to
        # break (and the main URL stays set, so no embedded server is started for it).
        env = {"POLYFARM_DATABASE_URL": embedded_server.dsn(), "POLYFARM_API__DATABASE_URL": dsn}
    assert_one_clear_line(command, env, "database")
    assert not EmbeddedPostgres(Path(os.environ["POLYFARM_DATA_DIR"])).state().running


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"intervals:\n  prices_s: .inf\n", "intervals.prices_s"),
        (b"log_level: LOUD\n", "log_level"),
        (b"api:\n  token: ''\n", "api.token"),
        (b"api:\n  cors_origins: ['*/']\n", "api.cors_origins"),
        (b"tiers:\n  orderbook_tiers: [9, -1]\n", "orderbook_tiers"),
        (b"log_level: \xff\xfe\n", "not UTF-8"),
        (b"api: " + b"[" * 5000 + b"]" * 5000, "deeper than"),
        (BILLION_LAUGHS.encode(), "aliases expand"),
    ],
    ids=["inf", "log level", "empty token", "wildcard origin", "tiers", "utf8", "deep", "bomb"],
)
def test_a_bad_settings_file_is_one_line(tmp_path: Path, content: bytes, needle: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_bytes(content)
    for command in (["status"], ["db", "url"]):
        assert_one_clear_line(["--config", str(config), *command], {}, needle)


@pytest.mark.usefixtures("clean_env")
def test_debug_shows_the_traceback_in_a_real_process() -> None:
    env = {**os.environ, "POLYFARM_DATABASE_URL": UNREACHABLE["closed port"]}
    plain = subprocess.run(
        [POLYFARM, "stats"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines()[-1].startswith("Error: cannot connect to the database")
    assert SECRET not in plain.stderr
    debug = subprocess.run(
        [POLYFARM, "--log-level", "DEBUG", "stats"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
