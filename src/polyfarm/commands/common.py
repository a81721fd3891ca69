"""Helpers shared by the subcommands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def run_async(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion (errors are the CLI entry's business: ``cli.py``)."""

    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())
