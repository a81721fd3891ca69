"""Verifying live books against the venue's hash: seeds from metadata (Gamma, then the CLOB's
``/clob-markets``) for what WebSocket books leave out, and counts per source of the hash."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson

from polyfarm.markets.catalog import MarketCatalog
from polyfarm.markets.tracked import BookSeed, book_seed, tracked_from
from polyfarm.polymarket import ClobClient
from polyfarm.polymarket.domain import BookSnapshot, Counters, MarketInfo, OrderBook, TokenInfo
from polyfarm.polymarket.ws_protocol import decode_frame
from polyfarm.settings import TierSettings, WebSocketSettings
from polyfarm.sim import wsmessages
from polyfarm.stream.bookcheck import BookChecker, HashOutcome
from polyfarm.stream.counts import StreamCounts, StreamEvent
from polyfarm.stream.livebook import HashSource, LiveBook, epoch_ms
from tests.polymarket.support import RecordingSleep, rest
from tests.wire_examples import example

from ..sim.support import reference_hash, running

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ws_book(raw: bytes) -> OrderBook:
    (message,) = decode_frame(raw, T0, Counters()).messages
    assert isinstance(message, BookSnapshot)
    return message.book


def checker_for(books: dict[str, LiveBook], clob: object = None) -> BookChecker:
    return BookChecker(books, clob, WebSocketSettings(), StreamCounts())  # type: ignore[arg-type]


def test_a_websocket_only_book_verifies_once_seeded_from_metadata() -> None:
    recorded = example("ws_message", "book_2026_without_metadata_composite")
    parsed = ws_book(recorded.raw)
    book = LiveBook(parsed.asset_id, parsed.market)
    book.replace(parsed)
    checker = checker_for({parsed.asset_id: book})
    assert checker.verify(parsed.asset_id) is None, "without its metadata it cannot be checked"
    assert checker.hash_checks == {(HashSource.WS_BOOK, HashOutcome.UNVERIFIABLE): 1}
    book.seed("5", True)  # the market's orderMinSize and negRisk
    assert checker.verify(parsed.asset_id) is True
    book.seed("15", False)  # seeds never overwrite what a book already has
    assert (book.min_order_size, book.neg_risk) == ("5", True)
    assert checker.hash_checks[HashSource.WS_BOOK, HashOutcome.VERIFIED] == 1
    wrong = LiveBook(parsed.asset_id, parsed.market)
    wrong.replace(parsed)
    wrong.seed("5", False)
    other = checker_for({parsed.asset_id: wrong})
    assert other.verify(parsed.asset_id) is False
    assert other.hash_checks == {(HashSource.WS_BOOK, HashOutcome.MISMATCHED): 1}


def test_every_source_of_the_venue_hash_is_counted_apart() -> None:
    recorded = example("clob_book", "composite_with_hash").value
    rest_book = ws_book(orjson.dumps({**recorded, "event_type": "book"}))
    book = LiveBook(rest_book.asset_id, rest_book.market)
    book.replace(rest_book)
    checker = checker_for({book.token_id: book})
    assert checker.verify(book.token_id) is True
    # A change: the venue's hash is the book's after the item, at the message's time.
    ts = epoch_ms(rest_book.timestamp) + 5
    changed = {**recorded, "timestamp": str(ts)}
    changed["bids"] = [*recorded["bids"][:-1], {"price": "0.5", "size": "1"}]
    assert book.apply_change(ts, True, 0.5, 1.0, reference_hash(changed))
    assert book.hash_source is HashSource.WS_PRICE_CHANGE
    assert checker.verify(book.token_id) is True
    later = rest_book.timestamp.replace(second=59)
    fetched = OrderBook(**{**_fields(rest_book), "timestamp": later, "hash": "0" * 40})
    assert checker.apply_rest(fetched) is StreamEvent.REFETCH_REPLACED
    assert book.hash_source is HashSource.REST
    assert checker.verify(book.token_id) is False
    assert checker.hash_checks == {
        (HashSource.WS_BOOK, HashOutcome.VERIFIED): 1,
        (HashSource.WS_PRICE_CHANGE, HashOutcome.VERIFIED): 1,
        (HashSource.REST, HashOutcome.MISMATCHED): 1,
    }


def _fields(book: OrderBook) -> dict[str, object]:
    return {name: getattr(book, name) for name in book.__struct_fields__}


async def test_books_without_metadata_are_seeded_from_the_clob() -> None:
    async with running(markets=60, seed=4) as sim:
        market = next(m for m in sim.world.markets if m.is_open and m.neg_risk)
        sim.world.open_book(market)
        parsed = ws_book(wsmessages.book_message(market, True))
        book = LiveBook(parsed.asset_id, parsed.market)
        book.replace(parsed)
        async with ClobClient(rest(sim.clob_url, "clob", RecordingSleep())) as clob:
            checker = checker_for({parsed.asset_id: book}, clob)
            assert checker.verify(parsed.asset_id) is None
            await checker.seed_some()
        assert (book.min_order_size, book.neg_risk) == (str(market.min_size), True)
        assert checker.counts[StreamEvent.SEEDED_FROM_CLOB] == 1
        assert checker.verify(parsed.asset_id) is True


def announced(min_size: Decimal | None) -> MarketInfo:
    tokens = tuple(
        TokenInfo(index=i, outcome=o, token_id=f"{i + 1}" * 70, price=None)
        for i, o in enumerate(("Yes", "No"))
    )
    return MarketInfo(
        market_id="7", condition_id="0x" + "cd" * 32, question="?", tokens=tokens,
        min_order_size=min_size, neg_risk=True,
    )  # fmt: skip


def test_catalogue_seeds_come_from_gamma_and_only_when_it_has_them() -> None:
    assert book_seed(announced(None)) is None
    assert book_seed(announced(Decimal("5.0"))) == BookSeed("5", True)
    assert book_seed(announced(Decimal("15"))) == BookSeed("15", True)
    tracked = tracked_from(announced(Decimal(5)), T0, TierSettings())
    assert tracked.book_seed == BookSeed("5", True)
    catalog = MarketCatalog(TierSettings())
    catalog.add_announced(announced(None), T0)
    assert catalog.markets["7"].book_seed is None
