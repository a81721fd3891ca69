"""Live books: snapshot, level updates, the venue hash, round trips (pure, plus one sim book)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
import orjson

from polyfarm.polymarket.domain import BookLevel, OrderBook
from polyfarm.polymarket.parse import parse_book
from polyfarm.stream.livebook import LiveBook, epoch_ms, number_text

from ..sim.support import reference_hash, running

MARKET = "0x" + "ab" * 32
TOKEN = "123456789"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def levels(*pairs: tuple[str, str]) -> tuple[BookLevel, ...]:
    return tuple(BookLevel(price=Decimal(p), size=Decimal(s)) for p, s in pairs)


def order_book(**changes: object) -> OrderBook:
    values: dict[str, object] = {
        "market": MARKET,
        "asset_id": TOKEN,
        "timestamp": T0,
        "bids": levels(("0.48", "100"), ("0.5", "20.5")),  # best last
        "asks": levels(("0.55", "7"), ("0.52", "30")),
        "hash": "h0",
        "min_order_size": Decimal("5"),
        "tick_size": Decimal("0.01"),
        "neg_risk": False,
        "last_trade_price": Decimal("0.51"),
    }
    values.update(changes)
    return OrderBook(**values)  # type: ignore[arg-type]


def test_snapshot_then_changes_keep_both_sides_sorted() -> None:
    book = LiveBook(TOKEN, MARKET)
    assert not book.ready
    book.replace(order_book())
    assert book.ready
    assert (book.best_bid, book.best_ask, book.mid) == (0.5, 0.52, 0.51)
    t1 = epoch_ms(T0) + 10
    assert book.apply_change(t1, True, 0.51, 3.0, "h1")  # new best bid
    assert book.apply_change(t1, False, 0.52, 0.0, "h2")  # touch removed
    assert book.apply_change(t1, True, 0.48, 150.0, "h3")  # size replaced, not added
    assert book.bids_best_first() == [(0.51, 3.0), (0.5, 20.5), (0.48, 150.0)]
    assert book.asks_best_first() == [(0.55, 7.0)]
    assert book.expected_hash == "h3"
    assert book.ts_ms == t1


def test_changes_older_than_the_snapshot_are_ignored_and_late_ones_keep_the_newest_hash() -> None:
    book = LiveBook(TOKEN, MARKET)
    book.replace(order_book())
    t0 = epoch_ms(T0)
    assert not book.apply_change(t0 - 1, True, 0.49, 10.0, "old")
    assert book.bids_best_first() == [(0.5, 20.5), (0.48, 100.0)]
    assert book.apply_change(t0 + 5, True, 0.49, 10.0, "newest")
    assert book.apply_change(t0 + 2, True, 0.47, 1.0, "late")  # out of order: applied
    assert book.expected_hash == "newest"
    assert book.ts_ms == t0 + 5


def test_invalidate_and_trade_and_tick_changes_drop_the_expected_hash() -> None:
    book = LiveBook(TOKEN, MARKET)
    book.replace(order_book())
    book.trade_printed(Decimal("0.53"))
    assert book.expected_hash is None
    assert book.last_trade == "0.53"
    book.apply_change(epoch_ms(T0) + 1, True, 0.49, 1.0, "h")
    book.tick_changed(Decimal("0.001"))
    assert (book.expected_hash, book.tick_size) == (None, "0.001")
    book.invalidate()
    assert not book.ready


def test_summary_hash_is_the_reference_hash_of_the_wire_book() -> None:
    book = LiveBook(TOKEN, MARKET)
    book.replace(order_book())
    wire = {
        "market": MARKET,
        "asset_id": TOKEN,
        "timestamp": str(epoch_ms(T0)),
        "hash": "",
        "bids": [{"price": "0.48", "size": "100"}, {"price": "0.5", "size": "20.5"}],
        "asks": [{"price": "0.55", "size": "7"}, {"price": "0.52", "size": "30"}],
        "min_order_size": "5",
        "tick_size": "0.01",
        "neg_risk": False,
        "last_trade_price": "0.51",
    }
    assert book.summary_hash() == reference_hash(wire)
    book.apply_change(epoch_ms(T0) + 1, True, 0.5, 0.0, None)
    assert book.summary_hash() != reference_hash(wire)


def test_summary_hash_is_unknown_without_tick_or_min_size() -> None:
    book = LiveBook(TOKEN, MARKET)
    book.replace(order_book(tick_size=None, min_order_size=None))
    assert book.summary_hash() is None


def test_round_trip_to_order_book_and_matches() -> None:
    book = LiveBook(TOKEN, MARKET)
    source = order_book()
    book.replace(source)
    again = book.to_order_book()
    assert again.bids == source.bids
    assert again.asks == source.asks
    assert again.best_bid == source.best_bid
    assert book.matches(source)
    book.apply_change(epoch_ms(T0) + 1, False, 0.6, 1.0, None)
    assert not book.matches(source)


def test_number_text_spells_decimals_like_the_venue() -> None:
    assert [number_text(x) for x in (1250.0, 0.51, 12848.17, 0.001, 1.0)] == [
        "1250",
        "0.51",
        "12848.17",
        "0.001",
        "1",
    ]


async def test_hash_of_a_simulated_book_matches_its_own_hash() -> None:
    async with running(markets=5) as sim, aiohttp.ClientSession() as http:
        token = next(iter(sim.world.tokens))
        async with http.get(f"{sim.clob_url}/book", params={"token_id": token}) as response:
            raw = await response.read()
    parsed = parse_book(raw)
    book = LiveBook(parsed.asset_id, parsed.market)
    book.replace(parsed)
    assert parsed.hash is not None
    assert book.summary_hash() == parsed.hash == reference_hash(orjson.loads(raw))
