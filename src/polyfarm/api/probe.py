"""The collector's live figures, read from its Prometheus endpoint.

The API and the collector are separate processes (in ``polyfarm demo`` they share one, and the
endpoint too), so WebSocket shards, message rates, queue depth and journal size come from the
collector's ``/metrics`` rather than from memory. The message rate is the counter's increase
between two reads; the first read has none.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from polyfarm.aio import AsyncResource
from polyfarm.store.disk import DiskPressure

MESSAGES = "polyfarm_ws_messages_total"
RECONNECTS = "polyfarm_ws_reconnects_total"
SHARDS = "polyfarm_ws_connected_shards"
JOURNAL = "polyfarm_journal_bytes"
QUEUE = "polyfarm_queue_depth"
BOOK_HASHES = "polyfarm_book_hash_checks_total"
DISK_PRESSURE = "polyfarm_disk_pressure"
PRESSURES = {pressure.value: pressure for pressure in DiskPressure}  # an unknown one: None
DISK_GAUGES = {  # CollectorDisk field → gauge (NaN: unknown)
    "used_bytes": "polyfarm_database_size_bytes",
    "budget_bytes": "polyfarm_disk_budget_bytes",
    "headroom_bytes": "polyfarm_disk_headroom_bytes",
    "growth_bytes_per_day": "polyfarm_disk_growth_bytes_per_day",
    "days_left": "polyfarm_disk_days_left",
    "retention_days": "polyfarm_disk_retention_days",
    "retention_days_fit": "polyfarm_disk_retention_days_fit",
}
MIN_RATE_WINDOW_S = 1.0

# (source of the venue hash, outcome) → checks; see polyfarm.stream.bookcheck.
HashChecks = dict[tuple[str, str], float]


@dataclass(frozen=True)
class CollectorDisk:
    """The collector's disk watch; None where its gauge is absent or unknown (NaN)."""

    used_bytes: float | None = None
    budget_bytes: float | None = None
    headroom_bytes: float | None = None
    growth_bytes_per_day: float | None = None
    days_left: float | None = None  # may be +inf: not growing
    retention_days: float | None = None
    retention_days_fit: float | None = None  # may be +inf: not growing
    pressure: DiskPressure | None = None


@dataclass(frozen=True)
class CollectorSample:
    reachable: bool
    connected_shards: float | None = None
    messages_total: float | None = None
    reconnects_total: float | None = None
    journal_bytes: float | None = None
    queue_depth: float | None = None
    events_per_s: float | None = None
    book_hashes: HashChecks = field(default_factory=dict)
    disk: CollectorDisk = field(default_factory=CollectorDisk)


def sample_sums(text: str) -> dict[str, float]:
    """Every sample name with its values summed over labels (pure)."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + float(sample.value)
    return sums


def hash_checks(text: str) -> HashChecks:
    """The book-hash counter by (source, outcome) labels (pure)."""
    checks: HashChecks = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == BOOK_HASHES:
                key = (sample.labels.get("source", ""), sample.labels.get("outcome", ""))
                checks[key] = checks.get(key, 0.0) + float(sample.value)
    return checks


def collector_disk(text: str, sums: dict[str, float]) -> CollectorDisk:
    """The disk gauges and the level in force (the ``state`` whose gauge is 1) (pure)."""
    pressure = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == DISK_PRESSURE and sample.value == 1:
                pressure = PRESSURES.get(sample.labels.get("state", ""))
    known = {
        name: value
        for name, gauge in DISK_GAUGES.items()
        if (value := sums.get(gauge)) is not None and not math.isnan(value)
    }
    return CollectorDisk(**known, pressure=pressure)


class CollectorProbe(AsyncResource):
    def __init__(
        self,
        url: str | None,
        *,
        timeout_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._last: tuple[float, float] | None = None  # (when, messages_total)
        self._rate: float | None = None

    async def open(self) -> None:
        if self.url is not None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def sample(self) -> CollectorSample:
        if self._session is None or self.url is None:
            return CollectorSample(reachable=False)
        try:
            async with self._session.get(self.url) as response:
                response.raise_for_status()
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return CollectorSample(reachable=False)
        sums = sample_sums(text)
        messages = sums.get(MESSAGES)
        return CollectorSample(
            reachable=True,
            connected_shards=sums.get(SHARDS),
            messages_total=messages,
            reconnects_total=sums.get(RECONNECTS),
            journal_bytes=sums.get(JOURNAL),
            queue_depth=sums.get(QUEUE),
            events_per_s=self._update_rate(messages),
            book_hashes=hash_checks(text),
            disk=collector_disk(text, sums),
        )

    def _update_rate(self, messages: float | None) -> float | None:
        if messages is None:
            return None
        now = self._clock()
        if self._last is None or messages < self._last[1]:  # first read, or a restart
            self._last = (now, messages)
            return self._rate
        elapsed = now - self._last[0]
        if elapsed >= MIN_RATE_WINDOW_S:
            self._rate = (messages - self._last[1]) / elapsed
            self._last = (now, messages)
        return self._rate
