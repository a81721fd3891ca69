"""Which fills the stream can vouch for, and the lost windows where it cannot (pure).

A connection's assets are covered from the moment its subscription is effective (the first data
of a session) until the connection is lost. Every window in between two covered stretches is
turned into a ``Gap`` for the repairer, widened by ``margin`` on both sides:

* a lost session: from the newest venue time it delivered (or its first data) to the first
  data of the next session, or to the venue's word that nothing moved (a connection whose
  markets all closed meanwhile gets no data again);
* a restart of the whole stream: from the last heartbeat of the previous process to the first
  data of each new connection (a first start promises nothing before its first data);
* a market added to a live connection: from its subscription — or its creation, for a market
  born after the stream started — to the arrival of its first book snapshot (or to its
  removal, when it closed before any snapshot came, or to the stream's stop);
* a market born after the stream started and closed before it was ever subscribed: its life;
* an unreadable frame: the connection's markets, from the newest venue time it had delivered
  (the lost frame's fills are no older than that, give or take the margin) to now.

``vouched_until`` is what the heartbeat records: the stream vouches for every fill before it,
so a successor process repairs from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from polyfarm.stream.connection import SessionEnd
from polyfarm.stream.repair import Gap, GapCause

Loss = tuple[datetime, GapCause, str]  # start, cause, detail


@dataclass
class Coverage:
    margin: timedelta
    submit: Callable[[Gap], None]
    losses: dict[int, Loss] = field(default_factory=dict)
    awaiting: dict[int, datetime] = field(default_factory=dict)  # new, no data yet
    first_data_at: dict[int, datetime] = field(default_factory=dict)
    # market → (wanted since, cause, monotonic time of the subscription)
    pending_markets: dict[str, tuple[datetime, GapCause, float]] = field(default_factory=dict)

    # -- connections ----------------------------------------------------------------------------

    def shard_opened(self, shard: int, since: datetime, cause: GapCause | None = None) -> None:
        """A new connection. With a ``cause`` (a restart) the window from ``since`` to its
        first data is repaired; without, nothing is promised before its first data, but the
        heartbeat does not vouch past ``since`` until then."""
        if cause is None:
            self.awaiting[shard] = since
        else:
            self._lose(shard, since, cause)

    def session_started(self, shard: int) -> None:
        self.first_data_at.pop(shard, None)

    def first_data(self, shard: int, markets: Iterable[str], now: datetime) -> None:
        self.first_data_at[shard] = now
        self.awaiting.pop(shard, None)
        loss = self.losses.pop(shard, None)
        if loss is not None:
            start, cause, detail = loss
            self.submit(Gap(tuple(markets), start, now + self.margin, cause, detail))

    def venue_quiet(self, shard: int, markets: Iterable[str], now: datetime) -> None:
        """The venue says nothing moved on a connection that has had no data this session:
        every book it has, we hold, so the books we lack are gone (their markets closed) and
        nothing more can trade there. That covers the connection as first data would."""
        if shard not in self.first_data_at:
            self.first_data(shard, markets, now)

    def session_lost(self, shard: int, newest_ms: int, end: SessionEnd) -> None:
        """The connection died; the window opens at the newest venue time it delivered."""
        began = self.first_data_at.pop(shard, None)
        if began is None:
            return  # no data this session: an earlier loss (if any) is still open
        newest = datetime.fromtimestamp(newest_ms / 1000, UTC) if newest_ms else began
        start = max(newest, began) - self.margin
        self._lose(shard, start, GapCause.CONNECTION_LOST, end.value)

    def frame_lost(self, markets: Iterable[str], newest_ms: int, now: datetime) -> None:
        """A frame could not be read; which market it was for is unknown."""
        newest = datetime.fromtimestamp(newest_ms / 1000, UTC) if newest_ms else now
        start = min(newest, now) - self.margin
        self.submit(Gap(tuple(markets), start, now + self.margin, GapCause.UNREADABLE_FRAME))

    def markets_left(self, shard: int, markets: Iterable[str], now: datetime) -> None:
        """Markets unsubscribed from a connection that is down: its open window is theirs
        too, and it closes now (they will not be in that connection's next first data)."""
        loss = self.losses.get(shard)
        left = tuple(markets)
        if loss is not None and left:
            start, cause, detail = loss
            self.submit(Gap(left, start, now + self.margin, cause, detail))

    def shard_closed(self, shard: int) -> None:
        self.losses.pop(shard, None)
        self.awaiting.pop(shard, None)
        self.first_data_at.pop(shard, None)

    def _lose(self, shard: int, start: datetime, cause: GapCause, detail: str = "") -> None:
        earlier = self.losses.get(shard)
        if earlier is None or start < earlier[0]:
            self.losses[shard] = (start, cause, detail)

    # -- markets --------------------------------------------------------------------------------

    def market_added(self, market_id: str, since: datetime, cause: GapCause, mono: float) -> None:
        """Subscribed on a live connection: covered once its first snapshot arrives."""
        self.pending_markets[market_id] = (since - self.margin, cause, mono)

    def snapshot_arrived(self, market_id: str, now: datetime) -> None:
        pending = self.pending_markets.pop(market_id, None)
        if pending is not None:
            start, cause, _ = pending
            self.submit(Gap((market_id,), start, now + self.margin, cause))

    def expire_pending(self, now: datetime, mono: float, after_s: float) -> None:
        """Markets still without a snapshot ``after_s`` after subscribing (a market that
        closed meanwhile has no book to send): their window closes now. Had the connection
        dropped meanwhile, its own lost window covers the rest."""
        for market_id, (_, _, added) in list(self.pending_markets.items()):
            if mono - added >= after_s:
                self.snapshot_arrived(market_id, now)

    def stream_stopped(self, now: datetime) -> None:
        """Markets still without a snapshot: their windows close now. Nothing else records
        them (the heartbeat vouches past their start), so a successor would not know."""
        for market_id in list(self.pending_markets):
            self.snapshot_arrived(market_id, now)

    def market_removed(self, market_id: str, now: datetime) -> None:
        """Unsubscribed before any snapshot (typically: closed meanwhile, so no book came):
        its whole wanted window goes to the repairer."""
        self.snapshot_arrived(market_id, now)

    # -- heartbeat ------------------------------------------------------------------------------

    def vouched_until(self, now: datetime, unrecorded: datetime | None) -> datetime:
        """Every fill before this time is stored or known missing (in ``feed_gaps``)."""
        starts = [start for start, _, _ in self.losses.values()] + list(self.awaiting.values())
        if unrecorded is not None:
            starts.append(unrecorded)
        return min([now, *starts])
