"""The sd_notify protocol as systemd receives it: datagrams on a Unix socket."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from polyfarm.sdnotify import notify, run_notifier, watchdog_interval_s


@pytest.fixture
def systemd_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.setblocking(False)
    yield receiver, path
    receiver.close()


def received(receiver: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(receiver.recv(4096).decode())
        except BlockingIOError:
            return messages


def test_nothing_happens_outside_systemd() -> None:
    assert notify("READY=1", {}) is False
    assert watchdog_interval_s({}) is None


def test_a_message_reaches_the_socket(systemd_socket: tuple[socket.socket, str]) -> None:
    receiver, path = systemd_socket
    assert notify("READY=1", {"NOTIFY_SOCKET": path})
    assert received(receiver) == ["READY=1"]


def test_the_watchdog_is_fed_at_half_its_interval_and_only_for_this_process() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "120000000"}) == 60.0
    mine = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval_s(mine) == 1.0
    assert watchdog_interval_s({**mine, "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None


async def test_ready_then_watchdog_pings_then_stopping(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    receiver, path = systemd_socket
    stop = asyncio.Event()
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"}
    task = asyncio.create_task(run_notifier(stop, environ))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 5)
    messages = received(receiver)
    assert messages[0] == "READY=1"
    assert messages[-1] == "STOPPING=1"
    assert messages.count("WATCHDOG=1") >= 3, messages


def test_an_unreachable_socket_is_logged_not_raised(tmp_path: Path) -> None:
    assert notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
