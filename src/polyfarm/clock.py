"""Time as a dependency: every component that reads the clock takes a ``Clock``.

Tests and the simulator pass their own (a frozen time, the simulator's fast clock); the daemon
passes ``utc_now``. Nothing else calls ``datetime.now``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
