"""The exception tree of polyfarm.

    PolyfarmError
    ├── ConfigError              settings or config file are invalid (permanent)
    ├── DatabaseError            anything the store layer raises on purpose
    │   ├── EmbeddedDatabaseError    the embedded PostgreSQL cannot start/stop
    │   ├── BackupError              a backup or restore failed (or would overwrite a schema)
    │   └── MigrationError           a migration cannot be applied
    │       └── ChecksumMismatchError    an applied file was edited afterwards
    └── SourceError              a Polymarket endpoint failed
        ├── TransientSourceError     worth retrying: 429, 5xx, timeouts, dropped sockets
        │   └── RateLimitedError         429 (carries Retry-After when the server sent one)
        └── PermanentSourceError     retrying cannot help: 4xx, undecodable payloads
            └── PayloadError             the body is not what the reference says

Transient versus permanent is explicit: retry loops catch ``TransientSourceError`` only.
``one_line`` is how the command lines (``polyfarm``, ``python -m polyfarm.sim``) show an error.
"""

from __future__ import annotations


class PolyfarmError(Exception):
    """Base of every error polyfarm raises on purpose."""


class ConfigError(PolyfarmError):
    pass


class DatabaseError(PolyfarmError):
    pass


class EmbeddedDatabaseError(DatabaseError):
    pass


class BackupError(DatabaseError):
    pass


class MigrationError(DatabaseError):
    pass


class ChecksumMismatchError(MigrationError):
    pass


class SourceError(PolyfarmError):
    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class TransientSourceError(SourceError):
    pass


class RateLimitedError(TransientSourceError):
    def __init__(
        self, message: str, *, url: str = "", status: int | None = 429, retry_after: float | None
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.retry_after = retry_after


class PermanentSourceError(SourceError):
    pass


class PayloadError(PermanentSourceError):
    def __init__(self, message: str, *, url: str = "", raw: bytes | str = b"") -> None:
        super().__init__(message, url=url)
        self.raw = raw


def one_line(exc: Exception) -> str:
    """The error as one line for a person: our own errors say what is wrong, others are named.
    A task group's errors are each told (its own message only counts them)."""
    if isinstance(exc, ExceptionGroup):
        return "; ".join(one_line(inner) for inner in _leaves(exc))
    if isinstance(exc, PolyfarmError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc} (run with --log-level DEBUG for details)"


def _leaves(group: ExceptionGroup[Exception]) -> list[Exception]:
    found: list[Exception] = []
    for inner in group.exceptions:
        found += _leaves(inner) if isinstance(inner, ExceptionGroup) else [inner]
    return found
