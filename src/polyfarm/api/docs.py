"""``/docs``: Swagger UI for the OpenAPI document, from files served here, never from a CDN.

The dashboard's build carries Swagger UI's script and stylesheet (``docs/`` in the build, copied
from the ``swagger-ui-dist`` package by ``dashboard/vite.config.ts``), so the page works on a
machine without internet access and under the same content security policy as the dashboard
(no inline script: the start-up code is ``/docs/swagger-init.js``). Without those files the page
is switched off with a 404 that points at ``/openapi.json``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
REVALIDATE = {"Cache-Control": "no-cache"}

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>polyfarm API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-init.js"></script></body></html>
"""
# validatorUrl null: no badge fetched from the public validator service.
SWAGGER_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


def docs_available(dist: Path) -> bool:
    return all((dist / "docs" / name).is_file() for name in SWAGGER_FILES)


def docs_router(dist: Path) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/docs", response_model=None)
    async def docs() -> Response:
        if not docs_available(dist):
            detail = (
                "the API docs page needs Swagger UI from the dashboard build, which is missing "
                "here; the OpenAPI document is at /openapi.json"
            )
            return JSONResponse({"detail": detail}, status_code=404)
        return HTMLResponse(DOCS_PAGE, headers=REVALIDATE)

    @router.get("/docs/swagger-init.js")
    async def swagger_init() -> Response:
        return Response(SWAGGER_INIT, media_type="text/javascript", headers=REVALIDATE)

    return router
