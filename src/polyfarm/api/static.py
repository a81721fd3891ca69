"""The built dashboard (``polyfarm/api/dashboard_build``, shipped with the package) served at
``/``, with the single-page-app fallback: any path that is not a file (``/markets/123``) gets
``index.html`` and the browser routes it.

Built assets have content hashes in their names and are cached for good; ``index.html`` is
revalidated every time so a new build shows at once. Should the build be missing (a
deleted directory, a wrong ``api.dashboard_dir``), ``/`` says so and how to build it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

from polyfarm.api.dashboard_sources import SHIPPED_DIR

# Paths the dashboard never owns: an unknown /api/... is a 404, not the app's index page.
RESERVED_PREFIXES = ("api/", "health/", "metrics/")
# Paths that only ever name files of the build: a missing one is a 404, not the index page.
FILE_PREFIXES = ("assets/", "docs/")
MAX_PATH = 1024
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
REVALIDATE = {"Cache-Control": "no-cache"}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>polyfarm: dashboard not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}
code{background:#eee;padding:.1rem .3rem;border-radius:3px}</style></head>
<body><h1>The dashboard has not been built</h1>
<p>The API is running (<a href="/health">/health</a>, <a href="/docs">/docs</a>,
<a href="/api/stats">/api/stats</a>), but there is no built dashboard in
<code>{where}</code>.</p>
<p>Build it with <code>make dashboard</code> (that is <code>npm ci &amp;&amp; npm run build</code>
in <code>dashboard/</code>, Node 20 or newer), then reload this page.</p></body></html>
"""


def default_dashboard_dir() -> Path:
    """The build shipped inside the package (see ``dashboard_sources``)."""
    return SHIPPED_DIR


def dashboard_router(dist: Path) -> APIRouter:
    root = dist.resolve()
    router = APIRouter(include_in_schema=False)

    @router.get("/{path:path}", response_model=None)
    async def dashboard(path: str) -> Response:
        if path.startswith(RESERVED_PREFIXES) or path in ("api", "metrics"):
            raise HTTPException(status_code=404, detail="not found")
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT.replace("{where}", str(root)), status_code=503)
        candidate = build_file(root, path)
        if candidate is not None:
            cache = IMMUTABLE if candidate.parent.name == "assets" else REVALIDATE
            return FileResponse(candidate, headers=cache)
        if path.startswith(FILE_PREFIXES):
            raise HTTPException(status_code=404, detail="not found")
        return FileResponse(index, headers=REVALIDATE)

    return router


def build_file(root: Path, path: str) -> Path | None:
    """The file of the build ``path`` names, or None (then the browser routes the path).

    A path that cannot name a file inside the build (a NUL byte, a name too long for the file
    system, a way out of ``root``) is a 404 here, not an exception.
    """
    if not path:
        return None
    if "\x00" in path or len(path) > MAX_PATH:
        raise HTTPException(status_code=404, detail="not found")
    try:
        candidate = (root / path).resolve()
        found = candidate.is_file()
    except (OSError, ValueError):
        raise HTTPException(status_code=404, detail="not found") from None
    if not candidate.is_relative_to(root):
        raise HTTPException(status_code=404, detail="not found")
    return candidate if found else None
