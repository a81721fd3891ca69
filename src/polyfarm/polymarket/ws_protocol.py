"""Sans-I/O core of the market WebSocket: frames in, domain messages out; no sockets, no clock.

``MarketProtocol`` owns what to send (subscribe first, then ``PING`` on schedule, dynamic
subscribe/unsubscribe) and how to read what arrives (single objects or arrays, the tagged union
on ``event_type``, control text). ``ws.py`` is the thin asyncio shell around it. The current
time is always passed in, so tests drive the whole protocol without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import msgspec

import polyfarm.polymarket._convert as cv
import polyfarm.polymarket.schemas as s
from polyfarm.errors import PayloadError
from polyfarm.polymarket.domain import (
    BestBidAsk,
    BookSnapshot,
    Counters,
    MarketResolved,
    NewMarket,
    PriceChange,
    PriceLevelChange,
    Reject,
    TickSizeChange,
    TradePrint,
    WsCount,
    WsMessage,
)
from polyfarm.polymarket.parse import parse_book

# Plain-text frames that are not JSON: keepalive answers and the custom-feature heartbeat.
CONTROL_FRAMES = {
    "PONG": WsCount.CONTROL_PONG,
    "PING": WsCount.CONTROL_PING,
    "NO NEW ASSETS": WsCount.CONTROL_NO_NEW_ASSETS,
}
PING = "PING"

_UNION: msgspec.json.Decoder[s.WsMessageWire] = msgspec.json.Decoder(s.WsMessageWire)
_BOOK = msgspec.json.Decoder(s.BookWire)
_PROBE = msgspec.json.Decoder(s.WsProbeWire)
_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])
_ELEMENT = msgspec.json.Decoder(msgspec.Raw)


class FrameResult(msgspec.Struct, frozen=True):
    messages: list[WsMessage]
    rejects: list[Reject]
    control: str | None = None


# --- message parsing (pure) ----------------------------------------------------------------


def _price_change_items(w: s.PriceChangeWire) -> list[PriceLevelChange]:
    """Current ``price_changes[]``, legacy ``changes[]`` (asset on top) or the flat 2024 form."""
    if w.price_changes is not None:
        return [_level_change(item, item.asset_id, item.hash) for item in w.price_changes]
    if w.changes is not None:
        return [_level_change(item, w.asset_id, item.hash or w.hash) for item in w.changes]
    if w.price is None or w.size is None or w.side is None:
        raise PayloadError("price_change has neither price_changes, changes nor a flat level")
    flat = s.PriceChangeItemWire(price=w.price, size=w.size, side=w.side)
    return [_level_change(flat, w.asset_id, w.hash)]


def _level_change(
    item: s.PriceChangeItemWire, asset_id: str | None, hash_: str | None
) -> PriceLevelChange:
    return PriceLevelChange(
        asset_id=cv.token_id(asset_id),
        price=cv.price(item.price),
        size=cv.size(item.size),
        side=cv.side(item.side),
        hash=cv.optional_text(hash_),
        best_bid=cv.optional_price_text(item.best_bid, "best_bid"),
        best_ask=cv.optional_price_text(item.best_ask, "best_ask"),
    )


def _new_market(w: s.NewMarketWire, received_at: datetime) -> NewMarket:
    # ``assets_ids`` are what the socket subscribes; ``clob_token_ids`` are not trading ids on
    # a Protocol V2 market, so they never stand in for missing ``assets_ids``.
    event = w.event_message
    return NewMarket(
        market_id=None if w.id is None else cv.numeric_id(w.id),
        condition_id=cv.condition_id(w.market),
        asset_ids=tuple(cv.token_id(a, "assets_ids") for a in w.assets_ids or ()),
        clob_token_ids=tuple(cv.token_id(a, "clob_token_ids") for a in w.clob_token_ids or ()),
        outcomes=tuple(w.outcomes or ()),
        timestamp=cv.epoch(w.timestamp),
        received_at=received_at,
        question=w.question,
        slug=cv.optional_text(w.slug),
        event_id=None if event is None or event.id is None else cv.numeric_id(event.id),
        event_slug=None if event is None else cv.optional_text(event.slug),
        group_item_title=cv.optional_text(w.group_item_title),
        tick_size=cv.optional_price_text(w.order_price_min_tick_size, "tick size"),
        tags=tuple(w.tags or ()),
    )


def _market_resolved(w: s.MarketResolvedWire, received_at: datetime) -> MarketResolved:
    winner = cv.optional_text(w.winning_asset_id)
    return MarketResolved(
        market_id=None if w.id is None else cv.numeric_id(w.id),
        condition_id=cv.condition_id(w.market),
        asset_ids=tuple(cv.token_id(a, "assets_ids") for a in w.assets_ids or ()),
        winning_asset_id=None if winner is None else cv.token_id(winner, "winning_asset_id"),
        winning_outcome=cv.optional_text(w.winning_outcome),
        timestamp=cv.epoch(w.timestamp),
        received_at=received_at,
        tags=tuple(w.tags or ()),
    )


def _trade(w: s.LastTradeWire, received_at: datetime) -> TradePrint:
    return TradePrint(
        asset_id=cv.token_id(w.asset_id),
        market=cv.condition_id(w.market),
        price=cv.price(w.price),
        size=cv.size(w.size),
        side=cv.optional_side(w.side),
        timestamp=cv.epoch(w.timestamp),
        received_at=received_at,
        fee_rate_bps=w.fee_rate_bps,
        transaction_hash=cv.optional_text(w.transaction_hash),
    )


@cv.payload_errors
def parse_ws_message(wire: s.WsMessageWire, received_at: datetime) -> WsMessage:
    """One decoded wire message → its domain message, stamped with our receive time."""
    match wire:
        case s.BookWire():
            return BookSnapshot(book=parse_book(wire), received_at=received_at)
        case s.PriceChangeWire():
            return PriceChange(
                market=cv.condition_id(wire.market),
                timestamp=cv.epoch(wire.timestamp),
                received_at=received_at,
                items=tuple(_price_change_items(wire)),
            )
        case s.LastTradeWire():
            return _trade(wire, received_at)
        case s.TickSizeChangeWire():
            return TickSizeChange(
                asset_id=cv.token_id(wire.asset_id),
                market=cv.condition_id(wire.market),
                old_tick_size=cv.optional_price(wire.old_tick_size, "old_tick_size"),
                new_tick_size=cv.price(wire.new_tick_size, "new_tick_size"),
                timestamp=cv.epoch(wire.timestamp),
                received_at=received_at,
            )
        case s.BestBidAskWire():
            return BestBidAsk(
                asset_id=cv.token_id(wire.asset_id),
                market=cv.condition_id(wire.market),
                best_bid=cv.optional_price_text(wire.best_bid, "best_bid"),
                best_ask=cv.optional_price_text(wire.best_ask, "best_ask"),
                spread=cv.optional_price_text(wire.spread, "spread"),
                timestamp=cv.epoch(wire.timestamp),
                received_at=received_at,
            )
        case s.NewMarketWire():
            return _new_market(wire, received_at)
        case s.MarketResolvedWire():
            return _market_resolved(wire, received_at)


# --- frame decoding (pure) -----------------------------------------------------------------


def _decode_element(raw: msgspec.Raw) -> s.WsMessageWire | None:
    """Tagged-union fast path; on refusal, look again: untagged book, unknown type, or bad.

    Returns ``None`` for a well-formed message of an unknown ``event_type`` (to be ignored).
    """
    try:
        return _UNION.decode(raw)
    except msgspec.ValidationError as union_error:
        probe = _PROBE.decode(raw)
        if probe.event_type is None and any(
            side is not None for side in (probe.bids, probe.asks, probe.buys, probe.sells)
        ):
            return _BOOK.decode(raw)
        if isinstance(probe.event_type, str) and probe.event_type not in _KNOWN_TYPES:
            return None
        raise union_error


_KNOWN_TYPES = frozenset(
    {
        "book",
        "price_change",
        "last_trade_price",
        "tick_size_change",
        "best_bid_ask",
        "new_market",
        "market_resolved",
    }
)


def decode_frame(data: str | bytes, received_at: datetime, counters: Counters) -> FrameResult:
    """Decode one text frame: a control word, one JSON object, or a JSON array of objects.

    A bad element is rejected (and counted) without losing the rest of its array.
    """
    text = data.strip() if isinstance(data, str) else data.strip().decode("utf-8", "replace")
    control = CONTROL_FRAMES.get(text)
    if control is not None:
        counters.incr(control)
        return FrameResult(messages=[], rejects=[], control=text)
    try:
        elements = _ELEMENTS.decode(text) if text.startswith("[") else [_ELEMENT.decode(text)]
    except msgspec.DecodeError as exc:
        counters.incr(WsCount.BAD_FRAME)
        return FrameResult(
            messages=[], rejects=[Reject(reason=f"bad frame: {exc}", raw=cv.raw_bytes(data))]
        )
    return _decode_elements(elements, received_at, counters)


def _decode_elements(
    elements: Iterable[msgspec.Raw], received_at: datetime, counters: Counters
) -> FrameResult:
    messages: list[WsMessage] = []
    rejects: list[Reject] = []
    for raw in elements:
        try:
            wire = _decode_element(raw)
            if wire is None:
                counters.incr(WsCount.UNKNOWN_EVENT_TYPE)
                continue
            messages.append(parse_ws_message(wire, received_at))
        except (msgspec.DecodeError, PayloadError) as exc:
            counters.incr(WsCount.BAD_MESSAGE)
            rejects.append(Reject(reason=str(exc), raw=bytes(raw), key=cv.record_key(raw)))
    counters.incr(WsCount.MESSAGES, len(messages))
    return FrameResult(messages=messages, rejects=rejects)


# --- protocol state ------------------------------------------------------------------------


def subscribe_message(asset_ids: Sequence[str], *, custom_features: bool = True) -> str:
    """The initial subscription, sent as the first frame after the socket opens."""
    body = {
        "assets_ids": list(asset_ids),
        "type": "market",
        "custom_feature_enabled": custom_features,
    }
    return msgspec.json.encode(body).decode()


class MarketProtocol:
    """Subscription state, keepalive schedule and frame decoding for one market connection.

    ``now`` arguments are monotonic seconds supplied by the caller.
    """

    def __init__(
        self,
        asset_ids: Sequence[str],
        *,
        ping_interval_s: float,
        counters: Counters,
        custom_features: bool = True,
    ) -> None:
        self._assets: dict[str, None] = dict.fromkeys(asset_ids)  # ordered set
        self._ping_interval_s = ping_interval_s
        self._custom_features = custom_features
        self.counters = counters
        self.next_ping_at: float | None = None  # None until subscribed: never PING before it
        self.last_data_at: float | None = None

    @property
    def asset_ids(self) -> tuple[str, ...]:
        return tuple(self._assets)

    def connection_opened(self, now: float) -> str:
        """A (re)connection starts: the full subscription goes first, then pings are due."""
        self.next_ping_at = now + self._ping_interval_s
        return subscribe_message(self.asset_ids, custom_features=self._custom_features)

    def ping_due(self, now: float) -> bool:
        return self.next_ping_at is not None and now >= self.next_ping_at

    def ping_sent(self, now: float) -> str:
        self.next_ping_at = now + self._ping_interval_s
        return PING

    def subscribe(self, asset_ids: Iterable[str]) -> str | None:
        """Frame adding assets on the open socket; ``None`` when nothing is new."""
        new = [a for a in dict.fromkeys(asset_ids) if a not in self._assets]
        if not new:
            return None
        self._assets.update(dict.fromkeys(new))
        body = {
            "assets_ids": new,
            "operation": "subscribe",
            "custom_feature_enabled": self._custom_features,
        }
        return msgspec.json.encode(body).decode()

    def unsubscribe(self, asset_ids: Iterable[str]) -> str | None:
        gone = [a for a in dict.fromkeys(asset_ids) if a in self._assets]
        if not gone:
            return None
        for asset in gone:
            del self._assets[asset]
        return msgspec.json.encode({"assets_ids": gone, "operation": "unsubscribe"}).decode()

    def receive(self, data: str | bytes, *, received_at: datetime, now: float) -> FrameResult:
        result = decode_frame(data, received_at, self.counters)
        # Control text (PONG, NO NEW ASSETS) proves the socket lives, not that data flows.
        if result.control is None and (result.messages or not result.rejects):
            self.last_data_at = now
        return result
