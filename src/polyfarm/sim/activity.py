"""What happens to one market at one instant: maker churn, taker trades, tick-size changes.

Pure functions over the world's state; each returns the ``WorldEvent``s it caused, with wire
values (book hashes, best bid/ask) captured at that instant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Protocol

from polyfarm.sim.book import apply_changes, mid_half, token_views
from polyfarm.sim.bookgen import Change, fair_units, generate_book, quote_update
from polyfarm.sim.dynamics import evolve_fair, impact, sweep, taker_shares, trade_notional
from polyfarm.sim.history import record_mid
from polyfarm.sim.model import (
    Book,
    BookUpdate,
    MarketState,
    TickSizeChange,
    Trade,
    TradeEvent,
    WorldEvent,
)
from polyfarm.sim.tradelog import TradeLog
from polyfarm.sim.wire import PRICE_SCALE, TICK_CENT, TICK_MILLI, hex256

USERS = 5000
FINE_TICK_LOW, FINE_TICK_HIGH = 800, 19_200  # 0.04 / 0.96 in half units


class WorldView(Protocol):
    """What activity uses of ``polyfarm.sim.world.World``, which calls it (so not imported)."""

    @property
    def seed(self) -> int: ...
    @property
    def rng(self) -> random.Random: ...
    @property
    def trades(self) -> TradeLog: ...
    @property
    def watch(self) -> Callable[[MarketState], bool]: ...


def materialize(world: WorldView, market: MarketState, ts: float) -> Book | None:
    """The market's YES book, generated on first use from a per-market seed."""
    if market.closed_s is not None:
        return None
    if market.book is None:
        fair = fair_units(evolve_fair(world.rng, market, ts))
        rng = random.Random(f"{world.seed}:book:{market.idx}")
        market.book = generate_book(rng, fair, market.tick, market.depth, int(ts * 1000))
        mid = mid_half(market.book)
        if mid is not None:
            record_mid(market, ts, mid)
    return market.book


def book_changed(
    world: WorldView, market: MarketState, changes: list[Change], ts: float
) -> list[WorldEvent]:
    """Apply level changes; emit the update and, when the price nears 0 or 1, a tick change.

    Book hashes are computed only for markets someone watches (``world.watch``).
    """
    book = market.book
    assert book is not None
    before = book.top()
    ts_ms = int(ts * 1000)
    apply_changes(book, changes, ts_ms)
    yes_view, no_view = token_views(market) if world.watch(market) else (None, None)
    update = BookUpdate(market, ts_ms, changes, yes_view, no_view, book.top() != before)
    events: list[WorldEvent] = [update]
    mid = mid_half(book)
    if mid is None:
        return events
    record_mid(market, ts, mid)
    if market.tick == TICK_CENT and (mid > FINE_TICK_HIGH or mid < FINE_TICK_LOW):
        market.tick = TICK_MILLI
        book.version += 1
        events.append(TickSizeChange(market, ts_ms, TICK_CENT, TICK_MILLI))
    return events


def quote(world: WorldView, market: MarketState, ts: float) -> list[WorldEvent]:
    book = materialize(world, market, ts)
    if book is None:
        return []
    fair = fair_units(evolve_fair(world.rng, market, ts))
    changes = quote_update(world.rng, book, fair, market.tick, market.depth)
    return book_changed(world, market, changes, ts) if changes else []


def _add_volume(market: MarketState, ts: float, notional: float) -> None:
    elapsed = ts - market.vol_s
    if elapsed > 0:
        market.vol24 *= math.exp(-elapsed / 86_400.0)
        market.vol1wk *= math.exp(-elapsed / 604_800.0)
        market.vol_s = ts
    market.vol24 += notional
    market.vol1wk += notional
    market.vol_total += notional


def _taker_direction(rng: random.Random, market: MarketState, book: Book, ts: float) -> bool:
    """True when the taker pushes the YES price up (buys YES or sells NO)."""
    fair = fair_units(evolve_fair(rng, market, ts))
    mid = mid_half(book) or 2 * fair
    lean = max(min((2 * fair - mid) / (8 * market.tick), 0.3), -0.3)
    return rng.random() < 0.5 + lean


def trade(world: WorldView, market: MarketState, ts: float) -> list[WorldEvent]:
    """One taker order: sweep the book from the touch, record the fill, move the fair value."""
    rng = world.rng
    book = materialize(world, market, ts)
    if book is None:
        return []
    up = _taker_direction(rng, market, book, ts)
    is_yes = rng.random() < 0.5
    touch = book.best_ask() if up else book.best_bid()
    if touch is None:
        return []
    notional = trade_notional(rng)
    shares = taker_shares(notional, touch if is_yes else PRICE_SCALE - touch)
    filled, last_yes, changes = sweep(book, up, shares)
    if filled == 0:
        return []
    fill = _record_fill(world, market, is_yes, up, (last_yes, filled), ts)
    market.fair_x += impact(fill.notional, up)
    return [TradeEvent(fill, fill.ts_ms), *book_changed(world, market, changes, ts)]


def _record_fill(
    world: WorldView,
    market: MarketState,
    is_yes: bool,
    up: bool,
    fill_at: tuple[int, int],
    ts: float,
) -> Trade:
    """Append the trade to the tape and update the token's last trade and the volumes."""
    rng = world.rng
    last_yes, size = fill_at
    fill = Trade(
        id=world.trades.next_id, market=market, is_yes=is_yes, buy=(up == is_yes),
        price=last_yes if is_yes else PRICE_SCALE - last_yes, size=size, ts_ms=int(ts * 1000),
        tx_hash=hex256(rng), taker=rng.randrange(USERS), maker=rng.randrange(USERS),
    )  # fmt: skip
    world.trades.append(fill)
    side = 0 if is_yes else 1
    market.ltp[side], market.lts[side] = fill.price, "BUY" if fill.buy else "SELL"
    _add_volume(market, ts, fill.notional)
    return fill
