"""Keeping live books honest: venue hashes, REST re-fetches and periodic cross-checks.

* **Hash checks.** Every changed book is queued; up to ``hash_checks_per_s`` of them a second
  have their own summary hash compared with the venue's hash of their newest change. Outcomes
  (verified, mismatched, unverifiable) are counted per source of that hash (WebSocket snapshot,
  WebSocket change, REST). A mismatch has the book re-fetched.
* **Seeds.** A WebSocket-only book can be verified only with the market's minimum order size
  and neg-risk flag, which its messages leave out; the stream seeds them from Gamma. A book
  found without them (a market heard of on the WebSocket only) gets them from the CLOB's
  ``/clob-markets/{condition_id}`` (``mos``, ``nr``), a few markets a second.
* **Re-fetches.** At most ``book_refetch_per_s`` books a second, each at most once every
  ``REFETCH_MIN_INTERVAL_S``, through ``POST /books``. A REST book replaces the live one only
  when it is at least as new; deltas older than it are then ignored (they are already in it).
* **Cross-checks.** Every ``crosscheck_interval_s``, ``crosscheck_tokens`` ready books (round
  robin) are compared with REST. Same timestamp and different levels is a real divergence: it
  is counted and the book replaced.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence

from polyfarm.aio import sleep_unless
from polyfarm.errors import SourceError
from polyfarm.logs import get_logger
from polyfarm.markets.tracked import decimal_text
from polyfarm.polymarket.clob import ClobClient
from polyfarm.polymarket.domain import OrderBook
from polyfarm.settings import WebSocketSettings
from polyfarm.stream.counts import StreamCounts, StreamEvent
from polyfarm.stream.livebook import HashSource, LiveBook, epoch_ms

log = get_logger(__name__)

REFETCH_MIN_INTERVAL_S = 30.0
TRUST_SAMPLE = 20
IN_FLIGHT_MS = 1_000
LAST_REFETCH_MAX = 10_000
TICK_S = 1.0
SEED_MARKETS_PER_TICK = 4
SEED_RETRY_S = 60.0


class HashOutcome(enum.Enum):
    VERIFIED = "verified"
    MISMATCHED = "mismatched"
    UNVERIFIABLE = "unverifiable"


HashCheckKey = tuple[HashSource, HashOutcome]


class BookChecker:
    def __init__(
        self,
        books: dict[str, LiveBook],
        clob: ClobClient,
        settings: WebSocketSettings,
        counts: StreamCounts,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._books = books
        self._clob = clob
        self._settings = settings
        self.counts = counts
        self._monotonic = monotonic
        self.pending: deque[str] = deque()  # changed books waiting for a hash check
        self._to_refetch: dict[str, None] = {}
        self._last_refetch: dict[str, float] = {}
        self._refetch_budget = 0.0
        self._cursor = 0
        self.refetch_min_interval_s = REFETCH_MIN_INTERVAL_S
        self._next_crosscheck = monotonic() + settings.crosscheck_interval_s
        self.hash_checks: Counter[HashCheckKey] = Counter()
        self._unseeded: dict[str, None] = {}  # condition ids whose books lack hash inputs
        self._seed_tried: dict[str, float] = {}

    # -- synchronous hooks for the receive path -------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing waits to be verified or re-fetched."""
        return not self.pending and not self._to_refetch

    def changed(self, token_id: str) -> None:
        book = self._books.get(token_id)
        if book is not None and not book.queued:
            book.queued = True  # at most one entry per book: the queue stays bounded
            self.pending.append(token_id)

    def request_refetch(self, token_id: str) -> None:
        self._to_refetch[token_id] = None

    def verify(self, token_id: str) -> bool | None:
        """Compare a ready book with the venue's hash: True/False, None when not possible."""
        book = self._books.get(token_id)
        if book is None or not book.ready or book.expected_hash is None:
            return None
        own = book.summary_hash()
        if own is None:
            self._count(book, HashOutcome.UNVERIFIABLE, StreamEvent.HASH_UNVERIFIABLE)
            if not book.seeded:
                self._unseeded[book.market] = None
            return None
        if own == book.expected_hash:
            self._count(book, HashOutcome.VERIFIED, StreamEvent.HASH_MATCH)
            book.suspect = False
            return True
        self._count(book, HashOutcome.MISMATCHED, StreamEvent.HASH_MISMATCH)
        book.suspect = self.hashes_trusted
        self.request_refetch(token_id)
        return False

    def _count(self, book: LiveBook, outcome: HashOutcome, total: StreamEvent) -> None:
        self.counts.add(total)
        self.hash_checks[book.hash_source, outcome] += 1

    @property
    def hashes_trusted(self) -> bool:
        """The venue's hashes mostly match ours, so a mismatch says the book is wrong. If
        they mostly do not (the venue hashes differently), a mismatch only costs a re-fetch."""
        match = self.counts[StreamEvent.HASH_MATCH]
        mismatch = self.counts[StreamEvent.HASH_MISMATCH]
        return match + mismatch < TRUST_SAMPLE or match >= mismatch

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.verify_some(int(self._settings.hash_checks_per_s * TICK_S))
            await self.seed_some()
            await self.refetch_some()
            if self._monotonic() >= self._next_crosscheck:
                self._next_crosscheck = self._monotonic() + self._settings.crosscheck_interval_s
                await self.crosscheck()
            await sleep_unless(stop, TICK_S)

    def verify_some(self, limit: int) -> None:
        pending = self.pending
        for _ in range(min(limit, len(pending))):
            token = pending.popleft()
            book = self._books.get(token)
            if book is not None:
                book.queued = False
                self.verify(token)

    async def seed_some(self, limit: int = SEED_MARKETS_PER_TICK) -> None:
        """Hash inputs from the CLOB for books that have none (each market at most once a
        ``SEED_RETRY_S``)."""
        now = self._monotonic()
        due = [c for c in self._unseeded if now - self._seed_tried.get(c, -1e18) >= SEED_RETRY_S][
            :limit
        ]
        for condition_id in due:
            self._seed_tried[condition_id] = now
            try:
                info = await self._clob.get_clob_market_info(condition_id)
            except SourceError as exc:
                self.counts.add(StreamEvent.SEED_FETCH_FAILED)
                log.warning("hash inputs not fetched", market=condition_id, error=repr(exc))
                continue
            del self._unseeded[condition_id]
            if info.min_order_size is None:
                continue
            for token in info.tokens:
                book = self._books.get(token.token_id)
                if book is not None:
                    book.seed(decimal_text(info.min_order_size), info.neg_risk)
                    self.counts.add(StreamEvent.SEEDED_FROM_CLOB)
        if len(self._seed_tried) > LAST_REFETCH_MAX:
            self._seed_tried = {c: at for c, at in self._seed_tried.items() if c in self._unseeded}

    async def refetch_some(self) -> None:
        rate = self._settings.book_refetch_per_s
        self._refetch_budget = min(self._refetch_budget + rate * TICK_S, max(rate, 1.0) * 10)
        now = self._monotonic()
        due: list[str] = []
        for token in list(self._to_refetch):
            if len(due) >= int(self._refetch_budget):
                break
            if now - self._last_refetch.get(token, -1e18) >= self.refetch_min_interval_s:
                del self._to_refetch[token]  # a token fetched lately waits its turn
                due.append(token)
                self._last_refetch[token] = now
        if len(self._last_refetch) > LAST_REFETCH_MAX:  # forget what no longer matters
            cutoff = now - self.refetch_min_interval_s
            self._last_refetch = {t: at for t, at in self._last_refetch.items() if at > cutoff}
        if due:
            self._refetch_budget -= len(due)
            for book in await self.fetch(due):
                self.counts.add(self.apply_rest(book))

    async def crosscheck(self) -> None:
        ready = [t for t, b in self._books.items() if b.ready]
        if not ready or self._settings.crosscheck_tokens <= 0:
            return
        start = self._cursor % len(ready)
        sample = (ready[start:] + ready[:start])[: self._settings.crosscheck_tokens]
        self._cursor = start + len(sample)
        for book in await self.fetch(sample):
            self.counts.add(self.compare(book))

    async def fetch(self, tokens: Sequence[str]) -> list[OrderBook]:
        if not tokens:
            return []
        try:
            batch = await self._clob.get_books(list(tokens))
        except SourceError as exc:
            self.counts.add(StreamEvent.REST_BOOK_ERRORS)
            log.warning("REST books for the live-book check failed", error=repr(exc))
            return []
        return list(batch.items.values())

    async def venue_moved(self, tokens: Sequence[str], now_ms: int) -> bool:
        """Did any of these books change on the venue beyond what we hold (or could we not
        find out)? Changes younger than ``IN_FLIGHT_MS`` may still be on their way. A book we
        hold that the venue no longer has moved too: its market closed meanwhile, and it may
        have traded until then (a probe answered after every market of a connection closed
        must not pass for a quiet connection)."""
        try:
            batch = await self._clob.get_books(list(tokens))
        except SourceError as exc:
            self.counts.add(StreamEvent.STALL_PROBE_FAILED)
            log.warning("stall probe failed; assuming a stall", error=repr(exc))
            return True
        for token in tokens:
            rest, live = batch.items.get(token), self._books.get(token)
            if rest is None:
                if live is not None and live.ready:
                    self.counts.add(StreamEvent.STALL_CONFIRMED_BOOK_GONE)
                    return True
                continue
            rest_ms = epoch_ms(rest.timestamp)
            if rest_ms > now_ms - IN_FLIGHT_MS:
                continue
            if live is None or not live.ready or rest_ms > live.ts_ms:
                self.counts.add(StreamEvent.STALL_CONFIRMED)
                return True
        self.counts.add(StreamEvent.QUIET_CONNECTION)
        return False

    # -- applying a REST book -------------------------------------------------------------------

    def apply_rest(self, rest: OrderBook) -> StreamEvent:
        """Replace the live book with a REST one when it is at least as new; what happened."""
        live = self._books.get(rest.asset_id)
        if live is None or not live.ready:
            return StreamEvent.REFETCH_ABSENT
        if epoch_ms(rest.timestamp) < live.ts_ms:
            return StreamEvent.REFETCH_LIVE_NEWER
        if live.matches(rest) and epoch_ms(rest.timestamp) == live.ts_ms:
            live.suspect = False
            return StreamEvent.REFETCH_AGREED
        live.replace(rest, HashSource.REST)
        self.changed(rest.asset_id)
        return StreamEvent.REFETCH_REPLACED

    def compare(self, rest: OrderBook) -> StreamEvent:
        live = self._books.get(rest.asset_id)
        if live is None or not live.ready:
            return StreamEvent.CROSSCHECK_ABSENT
        rest_ms = epoch_ms(rest.timestamp)
        if rest_ms == live.ts_ms and not live.matches(rest):
            live.replace(rest, HashSource.REST)
            self.changed(rest.asset_id)
            return StreamEvent.CROSSCHECK_DIVERGED
        if rest_ms == live.ts_ms:
            return StreamEvent.CROSSCHECK_AGREED
        return StreamEvent.CROSSCHECK_MOVED
