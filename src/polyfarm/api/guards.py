"""What every response goes through before and after the routes: the ``Host`` check that
defeats DNS rebinding, and the security headers.

DNS rebinding: a web page on ``attacker.example`` can point that name at 127.0.0.1 after the
browser loaded it, and then read this API as if it were same-origin, token or no token on
loopback. The browser still sends ``Host: attacker.example``, so answering only to the names
the API is meant to be reached by closes it.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polyfarm.logs import get_logger
from polyfarm.settings import ApiSettings
from polyfarm.validation import host_matches, host_of_header

log = get_logger(__name__)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")

# The dashboard and the docs page load only their own files: scripts from this origin (no
# inline script), inline styles (charts set style attributes), images from here or data: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)


def trusted_hosts(api: ApiSettings) -> tuple[str, ...]:
    """Loopback names, ``api.host`` unless it is a wildcard bind, and ``api.allowed_hosts``."""
    own = () if api.host in WILDCARD_BINDS else (api.host,)
    return tuple(dict.fromkeys((*LOOPBACK_NAMES, *own, *api.allowed_hosts)))


class TrustedHostGuard:
    """Answers 400 to a request whose ``Host`` is not one of ``allowed`` (see the module)."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        host = host_of_header(raw)
        if host is not None and host_matches(host, self.allowed):
            await self.app(scope, receive, send)
            return
        log.warning(
            "request refused: Host is not one this API answers to (see api.allowed_hosts)",
            host=raw[:200],
            path=scope.get("path", "")[:200],
            client=_client(scope),
        )
        refusal = JSONResponse({"detail": "this Host is not served here"}, status_code=400)
        await refusal(scope, receive, send)


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every HTTP response (pages, JSON and errors alike)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [pair for pair in SECURITY_HEADERS if pair[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None
