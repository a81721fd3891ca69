"""deploy/systemd: the units pass ``systemd-analyze verify`` (with ExecStart pointed at this
environment's polyfarm, as an install to /opt/polyfarm would have it), carry the restart,
watchdog and hardening settings the operator guide promises, and ``polyfarm serve`` speaks
the notify protocol they rely on (ready, watchdog pings, stopping)."""

from __future__ import annotations

import configparser
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .support import DEPLOY, tool

SYSTEMD = DEPLOY / "systemd"
INSTALLED = "/opt/polyfarm/bin/polyfarm"
LONG_RUNNING = ("polyfarm-collect.service", "polyfarm-serve.service")
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "Debian's package systemd")
    polyfarm = Path(sys.executable).with_name("polyfarm")
    names = sorted(p.name for p in SYSTEMD.iterdir() if p.suffix in (".service", ".timer"))
    for name in names:
        text = (SYSTEMD / name).read_text().replace(INSTALLED, str(polyfarm))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / name) for name in names)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == "", "every warning is a mistake in a unit"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_units_restart_feed_a_watchdog_and_are_hardened(name: str) -> None:
    service = unit(name)["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) >= 30
    assert service["Restart"] == "always"
    assert service["User"] == service["Group"] == "polyfarm"
    assert service["StateDirectory"] == "polyfarm"
    assert service["ExecStart"].startswith(INSTALLED)
    for key, value in HARDENING.items():
        assert service[key] == value, f"{name}: {key}"


def test_backups_run_daily_and_the_user_is_declared() -> None:
    timer = unit("polyfarm-backup.timer")["Timer"]
    assert "03:15" in timer["OnCalendar"]
    assert timer["Persistent"] == "true"
    assert unit("polyfarm-backup.service")["Service"]["ExecStart"] == f"{INSTALLED} db backup"
    assert (SYSTEMD / "polyfarm.sysusers.conf").read_text().count("u polyfarm ") == 1


@pytest.mark.timeout(120)
def test_serve_says_ready_feeds_the_watchdog_and_says_stopping(
    plain_dsn: str, tmp_path: Path
) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        receiver.settimeout(60)
        base = {k: v for k, v in os.environ.items() if not k.startswith("POLYFARM_")}
        env = {
            **base,
            "NOTIFY_SOCKET": path,
            "WATCHDOG_USEC": "200000",
            "POLYFARM_DATABASE_URL": plain_dsn,
            "POLYFARM_DATA_DIR": str(tmp_path),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "polyfarm.cli", "serve", "--port", "0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            messages = [receiver.recv(256).decode()]
            deadline = time.monotonic() + 30
            while messages.count("WATCHDOG=1") < 3 and time.monotonic() < deadline:
                messages.append(receiver.recv(256).decode())
            process.send_signal(signal.SIGTERM)
            while messages[-1] != "STOPPING=1":
                messages.append(receiver.recv(256).decode())
            assert process.wait(30) == 0
        finally:
            process.kill()
            stderr = process.communicate()[1].decode()
    assert messages[0] == "READY=1", stderr
    assert messages.count("WATCHDOG=1") >= 3, stderr
