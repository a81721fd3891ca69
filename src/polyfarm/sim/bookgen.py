"""Pure order-book mechanics: building a realistic book and the maker churn that moves it.

Books have tens of levels per side, sizes growing away from the touch, a few walls and often a
huge resting order at the extreme tick, as seen in recordings. All randomness comes from the
``random.Random`` passed in.
"""

from __future__ import annotations

import math
import random

from polyfarm.sim.model import Book
from polyfarm.sim.wire import PRICE_SCALE

Change = tuple[bool, int, int]  # (YES bid side?, price units, new total size hundredths)

MIN_SIZE = 500  # hundredths: five shares, the usual orderMinSize
MAX_LEVELS = 60


def level_size(rng: random.Random, depth: float, distance: int) -> int:
    """Size (hundredths) of a level ``distance`` levels away from the touch."""
    shares = depth * (1.0 + 0.35 * distance) * rng.lognormvariate(0.0, 0.55)
    if rng.random() < 0.05:
        shares *= rng.uniform(8.0, 25.0)  # a wall
    return max(MIN_SIZE, round(shares * 100))


def touch(fair: int, tick: int, spread_ticks: int) -> tuple[int, int]:
    """Best bid / best ask around ``fair`` on the tick grid, never touching 0 or 1."""
    bid = ((fair - spread_ticks * tick // 2) // tick) * tick
    bid = min(max(bid, tick), PRICE_SCALE - 2 * tick)
    ask = min(bid + spread_ticks * tick, PRICE_SCALE - tick)
    return bid, ask


def _fill_side(
    rng: random.Random, start: int, step: int, depth: float, count: int
) -> dict[int, int]:
    levels: dict[int, int] = {}
    price, distance = start, 0
    while 0 < price < PRICE_SCALE and len(levels) < count:
        if not levels or rng.random() < 0.85:
            levels[price] = level_size(rng, depth, distance)
            distance += 1
        price += step * (1 + (rng.random() < 0.25))
    return levels


def generate_book(rng: random.Random, fair: int, tick: int, depth: float, ts_ms: int) -> Book:
    """A fresh book centred on ``fair`` (ten-thousandths)."""
    best_bid, best_ask = touch(fair, tick, rng.choice((1, 1, 1, 2, 2, 3)))
    bids = _fill_side(rng, best_bid, -tick, depth, rng.randint(12, 40))
    asks = _fill_side(rng, best_ask, tick, depth, rng.randint(12, 40))
    if rng.random() < 0.7 and tick not in bids:
        bids[tick] = round(rng.uniform(5e4, 1e7) * 100)
    if rng.random() < 0.7 and PRICE_SCALE - tick not in asks:
        asks[PRICE_SCALE - tick] = round(rng.uniform(5e4, 1e7) * 100)
    return Book(bids=bids, asks=asks, ts_ms=ts_ms)


def _stale_top(book: Book, fair: int, tick: int) -> list[Change]:
    """Pull quotes that sit on the wrong side of the fair value."""
    bid, ask = book.top()
    if bid is not None and bid >= fair + tick:
        return [(True, bid, 0)]
    if ask is not None and ask <= fair - tick:
        return [(False, ask, 0)]
    return []


def _gap_fill(rng: random.Random, book: Book, fair: int, tick: int, depth: float) -> list[Change]:
    """Quote at the touch when the book has drifted away from the fair value."""
    bid, ask = book.top()
    target_bid, target_ask = touch(fair, tick, 1)
    if (bid is None or bid < target_bid - 2 * tick) and (ask is None or target_bid < ask):
        return [(True, target_bid, book.bids.get(target_bid, 0) + level_size(rng, depth, 0))]
    if (ask is None or ask > target_ask + 2 * tick) and (bid is None or target_ask > bid):
        return [(False, target_ask, book.asks.get(target_ask, 0) + level_size(rng, depth, 0))]
    return []


def _place(rng: random.Random, book: Book, fair: int, tick: int, depth: float) -> list[Change]:
    is_bid = rng.random() < 0.5
    distance = min(int(rng.expovariate(0.35)), 25)
    target_bid, target_ask = touch(fair, tick, 1)
    if is_bid:
        price = target_bid - distance * tick
        ask = book.best_ask()
        if price <= 0 or (ask is not None and price >= ask):
            return []
        return [(True, price, book.bids.get(price, 0) + level_size(rng, depth, distance))]
    price = target_ask + distance * tick
    bid = book.best_bid()
    if price >= PRICE_SCALE or (bid is not None and price <= bid):
        return []
    return [(False, price, book.asks.get(price, 0) + level_size(rng, depth, distance))]


def _cancel(rng: random.Random, book: Book) -> list[Change]:
    is_bid = rng.random() < 0.5
    side = book.bids if is_bid else book.asks
    if len(side) < 3:
        return []
    near = sorted(side, reverse=is_bid)[: min(8, len(side))]
    price = rng.choice(near)
    remaining = int(side[price] * rng.uniform(0.0, 0.8))
    return [(is_bid, price, remaining if remaining >= MIN_SIZE else 0)]


def _trim(book: Book, tick: int) -> list[Change]:
    """Keep each side under ``MAX_LEVELS`` by dropping the farthest level (not the extreme)."""
    changes: list[Change] = []
    if len(book.bids) > MAX_LEVELS:
        far = min(p for p in book.bids if p != tick)
        changes.append((True, far, 0))
    if len(book.asks) > MAX_LEVELS:
        far = max(p for p in book.asks if p != PRICE_SCALE - tick)
        changes.append((False, far, 0))
    return changes


def quote_update(
    rng: random.Random, book: Book, fair: int, tick: int, depth: float
) -> list[Change]:
    """One maker action: re-centre when stale, otherwise place or cancel near the touch."""
    changes = _stale_top(book, fair, tick) or _gap_fill(rng, book, fair, tick, depth)
    if not changes:
        changes = _place(rng, book, fair, tick, depth) if rng.random() < 0.55 else []
        changes = changes or _cancel(rng, book)
    return changes + _trim(book, tick)


def fair_units(x: float) -> int:
    """Logit → price in ten-thousandths, kept strictly inside (0, 1)."""
    price = 1.0 / (1.0 + math.exp(-max(min(x, 30.0), -30.0)))
    return min(max(round(price * PRICE_SCALE), 1), PRICE_SCALE - 1)
