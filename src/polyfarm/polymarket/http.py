"""Base async REST client: one aiohttp session, explicit lifecycle, throttling and retries.

Lifecycle is explicit (httpx style): ``UNOPENED → OPENED → CLOSED``; use ``async with``.
Retry policy is data (``RetryPolicy``); what counts as transient is decided in one place
(``_raise_for_response``) and follows ``errors.py``: 429, 5xx, timeouts, dropped connections and
syntactically broken JSON from a 200 are retried with jittered exponential backoff that honours
``Retry-After``; other 4xx and bodies of the wrong shape are permanent. Sleep, jitter and the
wall clock are injectable so tests run instantly and deterministically.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import aiohttp
import msgspec
from multidict import CIMultiDictProxy

from polyfarm.aio import AsyncResource
from polyfarm.backoff import Backoff
from polyfarm.clock import Clock, utc_now
from polyfarm.errors import (
    PayloadError,
    PermanentSourceError,
    RateLimitedError,
    SourceError,
    TransientSourceError,
)
from polyfarm.logs import get_logger
from polyfarm.polymarket.ratelimit import RateLimiter, Service, families_for
from polyfarm.settings import RateLimitSettings

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
QueryParams = Sequence[tuple[str, str]]

_BODY_LOG_BYTES = 2_000


class ClientState(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


# --- errors carrying the raw body -----------------------------------------------------------


class TransientHttpError(TransientSourceError):
    """5xx, timeout, dropped connection or broken JSON: worth retrying."""

    def __init__(
        self,
        message: str,
        *,
        url: str = "",
        status: int | None = None,
        body: bytes = b"",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.body = body
        self.retry_after = retry_after


class RateLimitedHttpError(RateLimitedError):
    """HTTP 429, or a 200 whose body is ``{"error": "Too Many Requests"}`` (Data API)."""

    def __init__(
        self,
        message: str,
        *,
        url: str = "",
        status: int = 429,
        body: bytes = b"",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, url=url, status=status, retry_after=retry_after)
        self.body = body


class PermanentHttpError(PermanentSourceError):
    """A 4xx (or an error body on a 200) that retrying cannot fix."""

    def __init__(
        self, message: str, *, url: str = "", status: int | None = None, body: bytes = b""
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.body = body


class NotFoundError(PermanentHttpError):
    pass


# --- policy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; which statuses are transient besides 5xx."""

    max_retries: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 300.0
    transient_statuses: frozenset[int] = frozenset({408, 425, 429})

    @classmethod
    def from_settings(cls, settings: RateLimitSettings) -> RetryPolicy:
        return cls(
            max_retries=settings.max_retries,
            backoff_base_s=settings.backoff_base_s,
            backoff_max_s=settings.backoff_max_s,
        )

    def is_transient_status(self, status: int) -> bool:
        return status >= 500 or status in self.transient_statuses

    def backoff(self, attempt: int, jitter: float) -> float:
        """The pause before retry ``attempt + 1`` (``attempt`` counts from 0)."""
        return Backoff(self.backoff_base_s, self.backoff_max_s).delay(attempt + 1, jitter)

    def delay(self, attempt: int, error: TransientSourceError, jitter: float) -> float:
        retry_after = (
            error.retry_after if isinstance(error, RateLimitedError | TransientHttpError) else None
        )
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        return self.backoff(attempt, jitter)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        return max(0.0, (when - now).total_seconds())
    return max(0.0, seconds) if math.isfinite(seconds) else None


def query_params(filters: Mapping[str, object]) -> list[tuple[str, str]]:
    """Filters → query pairs; list values become repeated params (``id=1&id=2``)."""
    pairs: list[tuple[str, str]] = []
    for key, value in filters.items():
        values = value if isinstance(value, list | tuple | set | frozenset) else [value]
        pairs.extend((key, _param_text(item)) for item in values if item is not None)
    return pairs


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class _ErrorProbe(msgspec.Struct):
    error: Any = None


_ERROR_PROBE = msgspec.json.Decoder(_ErrorProbe)


def error_in_body(body: bytes) -> str | None:
    """The ``error`` message of an object body, if it has one (Polymarket's error shape)."""
    if not body.lstrip().startswith(b"{"):
        return None
    try:
        message = _ERROR_PROBE.decode(body).error
    except msgspec.DecodeError:
        return None
    return message if isinstance(message, str) else None


# --- client --------------------------------------------------------------------------------


def _error_kind(exc: SourceError) -> str:
    return str(exc.status) if exc.status else type(exc).__name__


class RestClient(AsyncResource):
    """One service (Gamma, CLOB or Data API) over one ``aiohttp.ClientSession``."""

    def __init__(
        self,
        base_url: str,
        service: Service,
        *,
        settings: RateLimitSettings | None = None,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        now: Clock = utc_now,
    ) -> None:
        self.settings = settings or RateLimitSettings()
        self.base_url = base_url.rstrip("/")
        self.service: Service = service
        self.limiter = limiter or RateLimiter.from_settings(self.settings)
        self.policy = policy or RetryPolicy.from_settings(self.settings)
        self.state = ClientState.UNOPENED
        self._session = session
        self._owns_session = session is None
        self._sleep = sleep
        self._jitter = jitter
        self._now = now
        self._headers = {"User-Agent": self.settings.user_agent, "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
        self._log = get_logger(__name__, service=service)
        # Errors met, by kind ("429", "503", "TimeoutError", "PayloadError"…), retried or not;
        # read by the health line and the metrics.
        self.errors: Counter[str] = Counter()
        self.sent = 0  # requests sent, retries included (a backfill's cost against its floor)

    async def open(self) -> None:
        if self.state is not ClientState.UNOPENED:
            raise RuntimeError(f"cannot open a {self.state.value} client")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        self.state = ClientState.OPENED

    async def close(self) -> None:
        if self.state is ClientState.OPENED and self._owns_session and self._session is not None:
            await self._session.close()
        self.state = ClientState.CLOSED

    async def get(
        self, path: str, decoder: msgspec.json.Decoder[T], *, params: QueryParams = ()
    ) -> T:
        return await self.request("GET", path, decoder, params=params)

    async def post(self, path: str, decoder: msgspec.json.Decoder[T], *, json: object) -> T:
        return await self.request("POST", path, decoder, json=json)

    async def request(
        self,
        method: str,
        path: str,
        decoder: msgspec.json.Decoder[T],
        *,
        params: QueryParams = (),
        json: object = None,
    ) -> T:
        """Throttle, send, classify, retry transient failures; decode the body with ``decoder``."""
        families = families_for(self.service, path)
        body = None if json is None else msgspec.json.encode(json)
        attempt = 0
        while True:
            await self.limiter.acquire(families)
            self.sent += 1
            try:
                return await self._attempt(method, path, decoder, params, body)
            except TransientSourceError as exc:
                self.errors[_error_kind(exc)] += 1
                if attempt >= self.policy.max_retries:
                    raise
                await self._before_retry(attempt, exc)
                attempt += 1
            except PermanentSourceError as exc:
                self.errors[_error_kind(exc)] += 1
                raise

    async def _before_retry(self, attempt: int, exc: TransientSourceError) -> None:
        delay = self.policy.delay(attempt, exc, self._jitter())
        body = getattr(exc, "body", b"")
        self._log.warning(
            "polymarket_request_retry",
            url=exc.url,
            status=exc.status,
            error=str(exc),
            attempt=attempt + 1,
            delay_s=round(delay, 3),
            body=body[:_BODY_LOG_BYTES].decode("utf-8", "replace"),
        )
        await self._sleep(delay)

    def _require_session(self) -> aiohttp.ClientSession:
        if self.state is not ClientState.OPENED or self._session is None:
            raise RuntimeError(f"client is {self.state.value}; use `async with` to open it")
        return self._session

    async def _attempt(
        self,
        method: str,
        path: str,
        decoder: msgspec.json.Decoder[T],
        params: QueryParams,
        body: bytes | None,
    ) -> T:
        session = self._require_session()
        url = self.base_url + path
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with session.request(
                method, url, params=list(params), data=body, headers=headers, timeout=self._timeout
            ) as response:
                raw = await response.read()
                status, response_headers = response.status, response.headers
        except TimeoutError as exc:
            raise TransientHttpError(f"timeout after {self._timeout.total}s", url=url) from exc
        except aiohttp.InvalidURL as exc:
            raise PermanentHttpError(f"invalid URL: {exc}", url=url) from exc
        except aiohttp.ClientError as exc:
            raise TransientHttpError(f"{type(exc).__name__}: {exc}", url=url) from exc
        self._raise_for_response(url, status, response_headers, raw)
        return self._decode(url, raw, decoder)

    def _raise_for_response(
        self, url: str, status: int, headers: CIMultiDictProxy[str], raw: bytes
    ) -> None:
        retry_after = parse_retry_after(headers.get("Retry-After"), self._now())
        if status == 429:
            raise RateLimitedHttpError("HTTP 429", url=url, body=raw, retry_after=retry_after)
        if self.policy.is_transient_status(status):
            raise TransientHttpError(
                f"HTTP {status}", url=url, status=status, body=raw, retry_after=retry_after
            )
        if status == 404:
            raise NotFoundError(f"HTTP 404: {error_in_body(raw)}", url=url, status=404, body=raw)
        if status >= 300:
            raise PermanentHttpError(
                f"HTTP {status}: {error_in_body(raw)}", url=url, status=status, body=raw
            )
        message = error_in_body(raw)
        if message is None:
            return
        # The Data API rate-limits with HTTP 200 and an error body (reference §5).
        if "too many requests" in message.lower():
            raise RateLimitedHttpError(
                f"HTTP 200 error body: {message}",
                url=url,
                status=200,
                body=raw,
                retry_after=retry_after,
            )
        raise PermanentHttpError(f"HTTP 200 error body: {message}", url=url, status=200, body=raw)

    @staticmethod
    def _decode(url: str, raw: bytes, decoder: msgspec.json.Decoder[T]) -> T:
        try:
            return decoder.decode(raw)
        except msgspec.DecodeError as exc:
            # msgspec validates while parsing, so a truncated body may first trip a type check:
            # only well-formed JSON of the wrong shape is a (permanent) payload error.
            if isinstance(exc, msgspec.ValidationError) and _is_json(raw):
                raise PayloadError(f"unexpected body shape: {exc}", url=url, raw=raw) from exc
            # A truncated or garbled 200 is a transport accident: retry it.
            raise TransientHttpError(
                f"malformed JSON: {exc}", url=url, status=200, body=raw
            ) from exc


_ANY_JSON = msgspec.json.Decoder(msgspec.Raw)


def _is_json(raw: bytes) -> bool:
    try:
        _ANY_JSON.decode(raw)
    except msgspec.DecodeError:
        return False
    return True
