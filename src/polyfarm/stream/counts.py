"""What the stream counts, typed: messages by their class, everything else by ``StreamEvent``.

One ``StreamCounts`` per run is passed to whoever counts (the receive path, the book checker,
the chores); the heartbeat reads the fills seen, and the chore loop exports the growth to
Prometheus. Metric names and labels are the values here: dashboards and tests read them.
"""

from __future__ import annotations

import enum
from collections import Counter

from polyfarm.polymarket.domain import (
    BestBidAsk,
    BookSnapshot,
    MarketResolved,
    NewMarket,
    PriceChange,
    TickSizeChange,
    TradePrint,
    WsMessage,
)

MessageKind = type[WsMessage]

# ``polyfarm_ws_messages_total{type}``: the venue's ``event_type`` of each message class.
MESSAGE_LABELS: dict[MessageKind, str] = {
    PriceChange: "price_change",
    TradePrint: "last_trade_price",
    BookSnapshot: "book",
    BestBidAsk: "best_bid_ask",
    TickSizeChange: "tick_size_change",
    NewMarket: "new_market",
    MarketResolved: "market_resolved",
}


class StreamEvent(enum.Enum):
    """Everything the stream counts besides messages; the value is the
    ``polyfarm_stream_events_total`` label."""

    # the receive path
    DELTA_BEFORE_SNAPSHOT = "delta_before_snapshot"
    DELTA_IN_SNAPSHOT = "delta_in_snapshot"
    DELTA_REORDERED = "delta_reordered"
    REPEATED_DELTA_MESSAGE = "repeated_delta_message"
    TRADE_UNTRACKED_TOKEN = "trade_untracked_token"
    TRADE_WITHOUT_SIDE = "trade_without_side"
    REPEATED_FILL = "repeated_fill"
    BOOK_UNTRACKED_TOKEN = "book_untracked_token"
    LIFECYCLE_DROPPED = "lifecycle_dropped"
    BACKPRESSURE = "backpressure"
    # hash checks, seeds, REST re-fetches and cross-checks
    HASH_MATCH = "hash_match"
    HASH_MISMATCH = "hash_mismatch"
    HASH_UNVERIFIABLE = "hash_unverifiable"
    SEED_FETCH_FAILED = "seed_fetch_failed"
    SEEDED_FROM_CLOB = "seeded_from_clob"
    REFETCH_ABSENT = "refetch_absent"
    REFETCH_LIVE_NEWER = "refetch_live_newer"
    REFETCH_AGREED = "refetch_agreed"
    REFETCH_REPLACED = "refetch_replaced"
    CROSSCHECK_ABSENT = "crosscheck_absent"
    CROSSCHECK_DIVERGED = "crosscheck_diverged"
    CROSSCHECK_AGREED = "crosscheck_agreed"
    CROSSCHECK_MOVED = "crosscheck_moved"
    REST_BOOK_ERRORS = "rest_book_errors"
    # stalls and silent assets
    STALL_PROBE_FAILED = "stall_probe_failed"
    STALL_CONFIRMED = "stall_confirmed"
    STALL_CONFIRMED_BOOK_GONE = "stall_confirmed_book_gone"
    QUIET_CONNECTION = "quiet_connection"
    ASSET_SILENT = "asset_silent"
    # the chores
    QUARANTINE_OVERFLOW = "quarantine_overflow"


class StreamCounts:
    """Totals since the run began."""

    __slots__ = ("events", "messages")

    def __init__(self) -> None:
        self.messages: Counter[MessageKind] = Counter()
        self.events: Counter[StreamEvent] = Counter()

    def add(self, event: StreamEvent, amount: int = 1) -> None:
        self.events[event] += amount

    def __getitem__(self, event: StreamEvent) -> int:
        return self.events[event]

    def copy(self) -> StreamCounts:
        copied = StreamCounts()
        copied.messages.update(self.messages)
        copied.events.update(self.events)
        return copied

    def __repr__(self) -> str:
        messages = {kind.__name__: n for kind, n in self.messages.items()}
        events = {event.value: n for event, n in self.events.items()}
        return f"StreamCounts(messages={messages}, events={events})"
