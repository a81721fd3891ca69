"""systemd's notification protocol (``sd_notify(3)``) for ``Type=notify`` units with a watchdog.

``polyfarm collect`` and ``polyfarm serve`` say ``READY=1`` once they serve, ``STOPPING=1`` when
asked to stop, and ``WATCHDOG=1`` at half the unit's ``WatchdogSec`` from their event loop: a
loop stuck for longer than ``WatchdogSec`` stops the pings, and systemd kills and restarts the
unit (``deploy/systemd/``). Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing.

The protocol is one datagram per message on the Unix socket named by ``NOTIFY_SOCKET`` (a name
starting with ``@`` is in the abstract namespace); no library is needed.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

from polyfarm.aio import sleep_unless
from polyfarm.logs import get_logger

log = get_logger(__name__)


def notify(message: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send ``message`` (``KEY=value`` lines) to systemd; False when not run by systemd."""
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        # systemd gone or the socket not ours to use: the unit's own timeouts act on that.
        log.warning("cannot notify systemd", error=repr(exc), message=message)
        return False
    return True


def watchdog_interval_s(environ: Mapping[str, str] = os.environ) -> float | None:
    """Half the unit's ``WatchdogSec`` (systemd's advice), or None when no watchdog is set for
    this process (``WATCHDOG_PID`` names another one: a child inherited the variables)."""
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6 / 2


async def run_notifier(stop: asyncio.Event, environ: Mapping[str, str] = os.environ) -> None:
    """``READY=1`` now, ``WATCHDOG=1`` while the loop runs, ``STOPPING=1`` once ``stop`` is set."""
    notify("READY=1", environ)
    interval = watchdog_interval_s(environ)
    if interval is None:
        await stop.wait()
    else:
        notify("WATCHDOG=1", environ)
        while not await sleep_unless(stop, interval):
            notify("WATCHDOG=1", environ)
    notify("STOPPING=1", environ)
