"""Helpers shared by the subcommands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from polyfarm.errors import PolyfarmError

T = TypeVar("T")


def run_async(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion; polyfarm's own errors become a one-line CLI error."""

    async def main() -> T:
        return await coro_fn()

    try:
        return asyncio.run(main())
    except PolyfarmError as exc:
        raise click.ClickException(str(exc)) from exc
