"""Telling a database that is away from a bug, and saying so once per outage.

While the server is stopped, every chore that touches it fails each time it runs (once a
second for some). Logging each failure buries the one line an operator needs, and the raw
error is obscure (a stopped embedded server shows up as ``FileNotFoundError``: its socket is
gone). ``OutageLog`` logs the first failure of an outage as one warning with a readable cause,
counts the rest, and logs one line when the database answers again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import asyncpg


def database_unavailable(exc: BaseException) -> bool:
    """Errors that mean "try again later", judged by SQLSTATE class, never by message text:
    08 connection exception, 53 insufficient resources (disk full), 57 operator intervention
    (shutdown, cannot connect now), plus socket-level failures and timeouts."""
    if isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return isinstance(exc, asyncpg.PostgresError) and sqlstate[:2] in {"08", "53", "57"}


def outage_cause(exc: BaseException) -> str:
    """What an operator should read for an unavailable-database error."""
    if isinstance(exc, FileNotFoundError):
        return "no server socket (the database is stopped)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (the database is stopped or unreachable)"
    if isinstance(exc, TimeoutError):
        return "timed out waiting for the database"
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


@dataclass
class OutageLog:
    """One warning when ``what`` starts failing because the database is away, one info line
    when it works again; the failures in between are only counted."""

    what: str
    log: Any
    failures: int = 0
    _since: float | None = None

    @property
    def in_outage(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException, **context: Any) -> bool:
        """Record a failure; False when it is not an outage (the caller logs it as a bug)."""
        if not database_unavailable(exc):
            return False
        self.failures += 1
        if self._since is None:
            self._since = time.monotonic()
            self.log.warning(
                f"database unavailable: {self.what} wait for it",
                cause=outage_cause(exc),
                error=repr(exc),
                **context,
            )
        return True

    def succeeded(self) -> None:
        if self._since is None:
            return
        self.log.info(
            f"database back: {self.what} resumed",
            outage_s=round(time.monotonic() - self._since, 1),
            failures=self.failures,
        )
        self._since = None
        self.failures = 0
