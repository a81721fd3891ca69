"""Book changes of a market's two tokens stored once when one mirrors the other (migration 0020).

The venue's ``price_change`` message carries an item for each token of a market: a bid at p on
one is an ask at 1 - p on the other, of the same size, each with its token's own best bid and
ask. ``fold_book_changes`` (pure) keeps the lower-sid token's row and records in its
``mirror_seq`` the ``seq`` of the other's when that other row is its exact mirror: every value
the ``book_deltas`` view computes back for it (side, price, size, best bid and ask, times)
matches. Anything else is stored as it came.

``TokenMirrors`` (I/O) knows the pairs (``token_mirrors``, registered as markets come) and
from when folding is on (``mirror_folding.fold_from``); ``MirrorStart`` is the daemon's service
that sets that moment once no instance of an older version is writing beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from polyfarm.aio import sleep_unless
from polyfarm.logs import get_logger
from polyfarm.store.compact import MICROS, Side, SidMap
from polyfarm.store.outage import database_unavailable

log = get_logger(__name__)

# Positions in a ``book_changes`` record (``compact.BOOK_CHANGE_COLUMNS``).
_SID, _TS, _SEQ, _SIDE, _PRICE, _SIZE, _BID, _ASK, _RECEIVED, _MIRROR_SEQ = range(10)
_OTHER_SIDE = {Side.BUY.value: Side.SELL.value, Side.SELL.value: Side.BUY.value}


@dataclass(frozen=True)
class Folding:
    """What folding a batch needs: the known pairs (lower sid to higher) and from when."""

    pairs: Mapping[int, int]
    start: datetime


def _complement(micros: int | None) -> int | None:
    return None if micros is None else MICROS - micros


def _as_seen_by_partner(record: Sequence[Any], partner: int) -> tuple[Any, ...]:
    """The change ``record`` describes, as its pair's other token would have it."""
    return (
        partner, record[_TS], record[_RECEIVED], _OTHER_SIDE.get(record[_SIDE]),
        _complement(record[_PRICE]), record[_SIZE], _complement(record[_ASK]),
        _complement(record[_BID]),
    )  # fmt: skip


def _content(record: Sequence[Any]) -> tuple[Any, ...]:
    return (
        record[_SID], record[_TS], record[_RECEIVED], record[_SIDE], record[_PRICE],
        record[_SIZE], record[_BID], record[_ASK],
    )  # fmt: skip


def fold_book_changes(records: list[tuple[Any, ...]], folding: Folding) -> list[tuple[Any, ...]]:
    """``records`` (``book_changes`` records, ``mirror_seq`` None) with each higher-sid row
    that is the exact mirror of a lower-sid row of its pair at or after ``folding.start``
    folded into that row. Each row folds at most once; order is kept."""
    lower_of = {higher: lower for lower, higher in folding.pairs.items()}
    start = folding.start
    waiting: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        lower = lower_of.get(record[_SID])
        if lower is not None and record[_TS] >= start:
            waiting[_as_seen_by_partner(record, lower)].append(i)
    if not waiting:
        return records
    folded: dict[int, int] = {}  # lower row -> the higher row folded into it
    for i, record in enumerate(records):
        if record[_SID] in folding.pairs and record[_TS] >= start:
            mirrors = waiting.get(_content(record))
            if mirrors:
                folded[i] = mirrors.pop()
    if not folded:
        return records
    gone = set(folded.values())
    kept = []
    for i, record in enumerate(records):
        if i in gone:
            continue
        mirror = folded.get(i)
        kept.append(record if mirror is None else (*record[:_MIRROR_SEQ], records[mirror][_SEQ]))
    return kept


def market_pairs(records: Sequence[Sequence[Any]], sids: SidMap) -> set[tuple[int, int]]:
    """The (lower sid, higher sid) of each market with exactly two tokens among ``records``
    (public rows: ``ts, token_id, market_id, …``)."""
    tokens: dict[str, set[str]] = defaultdict(set)
    for record in records:
        tokens[record[2]].add(record[1])
    pairs = set()
    for pair in tokens.values():
        if len(pair) == 2:
            first, second = sorted(sids[token] for token in pair)
            pairs.add((first, second))
    return pairs


def represented(records: Sequence[Sequence[Any]]) -> int:
    """How many public rows ``book_changes`` records stand for."""
    return len(records) + sum(1 for record in records if record[_MIRROR_SEQ] is not None)


def mirrors_of_unfolded_sql(stage: str) -> str:
    """After a batch met rows already stored (``BulkWriter``'s merge through ``stage``): the
    mirrored changes of its folded rows whose stored twin is an unfolded row (written by a
    writer that did not fold it), stored as rows of their own unless stored already."""
    return f"""
INSERT INTO book_changes (token_sid, ts, seq, side, price, size, best_bid, best_ask, received_at)
SELECT m.mirror_sid, s.ts, s.mirror_seq, (3 - s.side)::smallint, {MICROS} - s.price, s.size,
       {MICROS} - s.best_ask, {MICROS} - s.best_bid, s.received_at
FROM {stage} s
JOIN token_mirrors m ON m.token_sid = s.token_sid
JOIN book_changes e ON e.token_sid = s.token_sid AND e.ts = s.ts AND e.seq = s.seq
WHERE s.mirror_seq IS NOT NULL AND e.mirror_seq IS NULL
ON CONFLICT DO NOTHING
"""  # noqa: S608 - our identifiers


# -- the pairs and the start, from the database ----------------------------------------------

_REGISTER = """
INSERT INTO token_mirrors (token_sid, mirror_sid)
SELECT * FROM unnest($1::integer[], $2::integer[]) ORDER BY 1
ON CONFLICT DO NOTHING
"""
_PAIRS_OF = """
SELECT token_sid, mirror_sid FROM token_mirrors
WHERE token_sid = ANY($1::integer[]) OR mirror_sid = ANY($1::integer[])
"""
_FOLD_FROM = "SELECT fold_from FROM mirror_folding"
DEFAULT_CAPACITY = 200_000  # sids remembered, as ``keys.TokenKeys``
FOLD_FROM_RECHECK_S = 20.0


class TokenMirrors:
    """The pairs known so far, and when folding starts; both read from the database."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        recheck_s: float = FOLD_FROM_RECHECK_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capacity = capacity
        self._recheck_s = recheck_s
        self._monotonic = monotonic
        self._pairs: dict[int, int] = {}
        self._settled: set[int] = set()  # sids whose pair (or lack of one) is known
        self._start: datetime | None = None
        self._start_read_at: float | None = None

    async def folding(
        self, pool: asyncpg.Pool, records: Sequence[Sequence[Any]], sids: SidMap
    ) -> Folding | None:
        """How to fold ``records`` (public book-delta rows); None while folding is off. Asks
        the database only for what it does not know yet."""
        if self._start is None and self._start_due():
            async with pool.acquire() as conn:
                await self._read_start(conn)
        start = self._start
        if start is None:
            return None
        new = [
            pair
            for pair in market_pairs(records, sids)
            if pair[0] not in self._settled or pair[1] not in self._settled
        ]
        if new:
            async with pool.acquire() as conn:
                await self._register(conn, new)
        return Folding(self._pairs, start)

    def _start_due(self) -> bool:
        """Once set, ``fold_from`` never changes; until then it is read again now and then,
        more often than ``MirrorStart`` sets it ahead of time."""
        read_at = self._start_read_at
        return read_at is None or self._monotonic() - read_at >= self._recheck_s

    async def _read_start(self, conn: asyncpg.Connection) -> None:
        start = await conn.fetchval(_FOLD_FROM)
        # asyncpg gives -infinity (a new database folds from the start) as a naive datetime.min.
        self._start = start.replace(tzinfo=UTC) if start and start.tzinfo is None else start
        self._start_read_at = self._monotonic()

    async def _register(self, conn: asyncpg.Connection, pairs: list[tuple[int, int]]) -> None:
        lower, higher = [p[0] for p in pairs], [p[1] for p in pairs]
        await conn.execute(_REGISTER, lower, higher)
        involved = [*lower, *higher]
        if len(self._settled) + len(involved) > self._capacity:
            self._pairs, self._settled = {}, set()  # a new map: a batch folding keeps its own
        known = dict(await conn.fetch(_PAIRS_OF, involved))
        self._pairs.update(known)
        self._settled.update(involved)


# -- the start: once no older writer is live ---------------------------------------------------

_STILL_OLDER = """
SELECT array_agg(DISTINCT h.instance ORDER BY h.instance) FROM instance_health h
WHERE h.updated_at >= now() - $2::interval AND h.instance <> $1
  AND NOT EXISTS (SELECT 1 FROM mirror_writers w WHERE w.instance = h.instance)
"""
_SEEN = """
INSERT INTO mirror_writers (instance) VALUES ($1)
ON CONFLICT (instance) DO UPDATE SET seen_at = now()
"""
_START = """
UPDATE mirror_folding SET fold_from = now() + $1::interval WHERE fold_from IS NULL
RETURNING fold_from
"""


@dataclass(frozen=True)
class MirrorStart:
    """Sets ``mirror_folding.fold_from`` (once, for every writer of the database) when no
    instance that does not fold has been live for ``live_window``; the writers read it at
    least every ``FOLD_FROM_RECHECK_S``, so ``lead`` ahead is soon enough for all of them."""

    pool: asyncpg.Pool
    instance: str
    interval_s: float = 60.0
    live_window: timedelta = timedelta(minutes=10)
    lead: timedelta = timedelta(minutes=2)

    async def run(self, stop: asyncio.Event) -> None:
        while True:
            try:
                if await self.step():
                    await stop.wait()  # a service returns only when stopped
                    return
            except (asyncpg.PostgresError, OSError) as exc:
                if not database_unavailable(exc):
                    raise
                log.warning("mirror folding: database unavailable", error=repr(exc))
            if await sleep_unless(stop, self.interval_s):
                return

    async def step(self) -> bool:
        """True once folding has a start (nothing left to do)."""
        async with self.pool.acquire() as conn:
            await conn.execute(_SEEN, self.instance)
            start = await conn.fetchval(_FOLD_FROM)
            if start is not None:
                return True
            older = await conn.fetchval(_STILL_OLDER, self.instance, self.live_window)
            if older:
                log.info(
                    "mirror folding waits: instances of an older version are live",
                    instances=older,
                )
                return False
            start = await conn.fetchval(_START, self.lead)
        log.info("mirror folding starts", fold_from=start)
        return True
