"""Rows that repeat the previous one written for their token are not written again.

Order-book snapshots and feature rows of a quiet market are the same slot after slot; at venue
scale many books do not change for hours. ``LastWritten`` remembers, per token, a digest of the
last row written (a 64-bit ``hash``, not the row) and the keyframe window it fell in; a row is
due when its digest differs or it is the token's first in a new window. So:

* readers take the latest row at or before a time (forward fill) and never look back more than
  one keyframe window plus one cadence, and every epoch-aligned window (hence every database
  period made of whole windows) holds a row of every token that was collected in it;
* the memory is per process: the first slot after a start is always written;
* a token the writer stops serving (closed, handed to the other writer, unsubscribed) is
  forgotten, so when it comes back its first row is written again, whatever the other writer
  stored meanwhile.

Digests are Python's ``hash`` of the compared values: per-process (salted), which is all a
per-process memory needs; a false "same" needs a 64-bit collision. NaN hashes by identity, so a
NaN value always counts as a change (the safe side).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Generic, NamedTuple, Protocol, TypeVar


class TokenRow(Protocol):
    @property
    def ts(self) -> datetime: ...

    @property
    def token_id(self) -> str: ...


Row = TypeVar("Row", bound=TokenRow)


class Written(NamedTuple):
    digest: int
    window: int  # epoch seconds // keyframe_s of the row's slot


def keyframe_window(slot: datetime, keyframe_s: float) -> int:
    return int(slot.timestamp() // keyframe_s)


class LastWritten(Generic[Row]):
    """Per token, what was last written; ``skip=False`` makes every row due (and remembers
    nothing)."""

    def __init__(self, digest: Callable[[Row], int], *, skip: bool, keyframe_s: float) -> None:
        self._digest = digest
        self._skip = skip
        self._keyframe_s = keyframe_s
        self._last: dict[str, Written] = {}
        self.skipped = 0

    def __len__(self) -> int:
        return len(self._last)

    def due(self, row: Row) -> bool:
        """Whether ``row`` must be written; counts the ones that need not."""
        if not self._skip:
            return True
        last = self._last.get(row.token_id)
        if last is None or last != self._written(row):
            return True
        self.skipped += 1
        return False

    def remember(self, rows: Iterable[Row]) -> None:
        """Called once ``rows`` are written (not before: a failed write is retried in full)."""
        if self._skip:
            for row in rows:
                self._last[row.token_id] = self._written(row)

    def forget(self, token_id: str) -> None:
        self._last.pop(token_id, None)

    def keep_only(self, token_ids: Collection[str]) -> None:
        """Forget every token not in ``token_ids`` (closed or no longer served)."""
        for token_id in [t for t in self._last if t not in token_ids]:
            del self._last[token_id]

    def _written(self, row: Row) -> Written:
        return Written(self._digest(row), keyframe_window(row.ts, self._keyframe_s))
