"""The OpenAPI document, for the dashboard's generated TypeScript types.

``python -m polyfarm.api.openapi > dashboard/openapi.json`` (``make openapi``) refreshes the
committed copy; a test fails when it is out of date, and ``npm run build`` turns it into
``dashboard/src/api/schema.ts``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from polyfarm.api.app import create_app
from polyfarm.settings import Settings


@contextlib.asynccontextmanager
async def _no_pool() -> AsyncIterator[asyncpg.Pool]:
    raise RuntimeError("the OpenAPI document needs no database")
    yield  # pragma: no cover


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings(), _no_pool).openapi()
    document["info"]["version"] = "0"  # the package version would churn the committed copy
    return document


def openapi_json() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(openapi_json(), end="")
