"""The small asyncio idioms every loop of the daemon uses, written once.

A loop stops when its ``stop`` event is set: between steps it waits with ``sleep_unless``, and
it waits for a condition with ``first_of``. Both return as soon as ``stop`` is set, so shutdown
never waits for a timer. ``AsyncResource`` gives a class with ``open``/``close`` its ``async
with`` form.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self


async def sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True when ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    return stop.is_set()


async def first_of(
    wanted: asyncio.Event, stop: asyncio.Event, within_s: float | None = None
) -> bool:
    """Wait for ``wanted`` unless ``stop`` (or ``within_s`` seconds) comes first; True when
    ``wanted`` is set and ``stop`` is not. Both waiters are cancelled and awaited on return,
    so none is left pending."""
    waiters = {asyncio.ensure_future(wanted.wait()), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(waiters, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for waiter in waiters:
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
    return wanted.is_set() and not stop.is_set()


class AsyncResource:
    """``async with resource:`` opens it and always closes it, also when opening fails."""

    async def open(self) -> None:
        """Acquire what the resource holds; the default holds nothing."""

    async def close(self) -> None:
        """Release it; must be safe to call twice and after a failed ``open``."""

    async def __aenter__(self) -> Self:
        try:
            await self.open()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
