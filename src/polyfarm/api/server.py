"""Running the API: uvicorn inside our own event loop, stopped by our own stop event.

The listening socket is bound before uvicorn starts, so a port in use is a clear error here
rather than uvicorn's ``sys.exit``; and uvicorn's signal handling is switched off, because the
caller (``polyfarm serve``, ``polyfarm demo``) already turns SIGINT/SIGTERM into the stop event
that also stops the collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from polyfarm.errors import ConfigError, PolyfarmError
from polyfarm.logs import get_logger

log = get_logger(__name__)
GRACEFUL_SHUTDOWN_S = 5
BACKLOG = 2048


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # signals belong to the caller's stop event


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another with --port or "
            "POLYFARM_API__PORT"
        ) from exc
    # Listening at once: connections made before uvicorn starts wait in the backlog.
    sock.listen(BACKLOG)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def serve_app(app: FastAPI, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set; raises when the app fails to start (its lifespan)."""
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = _EmbeddedServer(config)

    async def exit_on_stop() -> None:
        await stop.wait()
        server.should_exit = True

    async with asyncio.TaskGroup() as group:
        watcher = group.create_task(exit_on_stop(), name="api-stop")
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()
    if not server.started:
        raise PolyfarmError("the API did not start: see the error logged above")
