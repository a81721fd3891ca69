"""Token ids to the small integer keys the time series are stored under (``token_keys``).

A Polymarket token id is a 77- or 78-digit number; every compact row stores its 4-byte
``token_sid`` instead. ``TokenKeys`` keeps the sids of recently written tokens in memory (a
bounded cache), and resolves the tokens of a batch it does not know in one round trip that
registers the new ones and reads the sids of all of them.

The cache is only ever added to. When it outgrows its capacity, the newest half is copied into a
new dictionary, so a batch still encoding with the mapping it was given keeps every sid it
needs.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import asyncpg

DEFAULT_CAPACITY = 200_000

# New tokens first (in token id order, so that concurrent registrations take their locks in
# one order), then the sids of every token asked for. Only tokens not yet registered are
# inserted: an identity value drawn for a conflicting row would be lost. The plain INSERT is
# about a third cheaper than one with ON CONFLICT (no speculative insertion); it fails only
# when another process registers one of the same tokens at the same moment, and then the
# statement is run again with ON CONFLICT DO NOTHING. A token registered by a concurrent
# transaction that commits after that statement began is in neither part; the caller asks
# again for those.
_RESOLVE = """
WITH wanted AS (
    SELECT token_id, market_id FROM unnest($1::text[], $2::text[]) AS w(token_id, market_id)
),
added AS (
    INSERT INTO token_keys (token_id, market_id)
    SELECT w.token_id, w.market_id FROM wanted w
    WHERE NOT EXISTS (SELECT 1 FROM token_keys k WHERE k.token_id = w.token_id)
    ORDER BY w.token_id
    {on_conflict}
    RETURNING token_id, token_sid
)
SELECT token_id, token_sid FROM added
UNION ALL
SELECT k.token_id, k.token_sid FROM token_keys k JOIN wanted w USING (token_id)
"""
_REGISTER = _RESOLVE.format(on_conflict="")
_REGISTER_BESIDE_OTHERS = _RESOLVE.format(on_conflict="ON CONFLICT (token_id) DO NOTHING")
_LOOKUP = "SELECT token_id, token_sid FROM token_keys WHERE token_id = ANY($1::text[])"


class TokenKeys:
    """token_id -> token_sid, registering tokens seen for the first time."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = max(1, capacity)
        self._sids: dict[str, int] = {}
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._sids)

    async def resolve(
        self, pool: asyncpg.Pool, records: Sequence[Sequence[Any]]
    ) -> Mapping[str, int]:
        """A mapping that holds the sid of the token of every record. Records are in a public
        row type's column order, which starts ``ts, token_id, market_id``; a new token is
        registered with the market id of its row."""
        sids = self._sids
        unknown = set(map(itemgetter(1), records)).difference(sids)  # one pass, in C
        if not unknown:
            return sids
        missing = {record[1]: record[2] for record in records if record[1] in unknown}
        async with self._lock:  # one registration at a time: only it replaces the cache
            known = self._sids  # another task may have registered some of ours meanwhile
            still = {t: m for t, m in missing.items() if t not in known}
            found = await self._fetch(pool, still) if still else {}
            found.update((t, known[t]) for t in missing if t not in found)
            self._remember(found)
        sids.update(found)  # this batch's mapping, even if the cache was replaced meanwhile
        return sids

    async def _fetch(self, pool: asyncpg.Pool, missing: dict[str, str]) -> dict[str, int]:
        async with pool.acquire() as conn:
            tokens, markets = list(missing), list(missing.values())
            try:
                rows = await conn.fetch(_REGISTER, tokens, markets)
            except asyncpg.UniqueViolationError:
                rows = await conn.fetch(_REGISTER_BESIDE_OTHERS, tokens, markets)
            found = {row["token_id"]: row["token_sid"] for row in rows}
            late = [token for token in missing if token not in found]
            if late:
                found.update(dict(await conn.fetch(_LOOKUP, late)))
        absent = [token for token in missing if token not in found]
        if absent:  # not reachable unless rows vanish from token_keys meanwhile
            raise LookupError(f"token ids without a sid: {absent[:3]}")
        return found

    def _remember(self, found: Mapping[str, int]) -> None:
        self._sids.update(found)
        if len(self._sids) > self._capacity:
            keep = self._capacity // 2
            newest = itertools.islice(reversed(self._sids.items()), keep)
            self._sids = dict(reversed(list(newest)))
