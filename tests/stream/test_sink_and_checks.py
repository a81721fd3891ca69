"""Write queues and their flusher, and the REST side of the book checks (no database)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from polyfarm.polymarket.domain import Batch, BookLevel, OrderBook
from polyfarm.settings import WebSocketSettings
from polyfarm.store.rows import BOOK_DELTAS, TRADES, TableSpec
from polyfarm.store.writing import WriteResult
from polyfarm.stream.bookcheck import BookChecker
from polyfarm.stream.counts import StreamCounts, StreamEvent
from polyfarm.stream.livebook import LiveBook, epoch_ms
from polyfarm.stream.sink import Flusher, WriteQueue

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeWriter:
    """Records batches; fails the first ``failures`` writes like a database going away."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.batches: list[tuple[str, int]] = []

    async def write(self, spec: TableSpec, rows: Sequence[Any]) -> WriteResult:
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise asyncpg.ConnectionDoesNotExistError("gone")
        self.batches.append((spec.name, len(rows)))
        return WriteResult(spec.name, offered=len(rows), inserted=len(rows))


def flusher(writer: FakeWriter, *queues: WriteQueue, batch: int = 10) -> Flusher:
    return Flusher(writer, list(queues), interval_s=0.01, batch_rows=batch)


async def test_a_full_trade_queue_holds_the_reader_until_rows_are_written() -> None:
    trades = WriteQueue(TRADES, capacity=5)
    writer = FakeWriter()
    for i in range(5):
        trades.put(i, float(i))
    assert trades.full
    waiting = asyncio.ensure_future(trades.wait_for_space())
    await asyncio.sleep(0.01)
    assert not waiting.done(), "back-pressure: the reader waits"
    assert await flusher(writer, trades, batch=3).flush()
    await asyncio.wait_for(waiting, 1)
    assert len(trades) == 2
    assert writer.batches == [("trades", 3)]


async def test_failed_writes_keep_their_rows_in_order_and_no_queue_starves() -> None:
    trades, deltas = WriteQueue(TRADES, 100), WriteQueue(BOOK_DELTAS, 100)
    for i in range(25):
        trades.put(("t", i), 0.0)
        deltas.put(("d", i), 0.0)
    writer = FakeWriter(failures=1)
    sink = flusher(writer, trades, deltas)
    assert not await sink.flush()  # one of the two side-by-side writes failed
    assert sorted([len(trades), len(deltas)]) == [15, 25]
    failed = trades if len(trades) == 25 else deltas
    assert failed.rows[0][1] == 0, "the failed batch went back to the head, in order"
    done = asyncio.Event()
    done.set()
    await asyncio.wait_for(sink.run(done), 5)
    assert not trades
    assert not deltas
    # Each queue got its turn in every pass: three batches of at most ten rows each.
    assert Counter(name for name, _ in writer.batches) == {"trades": 3, "book_deltas": 3}
    assert sum(n for _, n in writer.batches) == 50
    assert sink.latencies.percentile(0.5) is not None


# -- REST books against live books ----------------------------------------------------------


def rest_book(ts: datetime, bid: str = "0.5", size: str = "10") -> OrderBook:
    return OrderBook(
        market="0x" + "ab" * 32,
        asset_id="t1",
        timestamp=ts,
        bids=(BookLevel(price=Decimal(bid), size=Decimal(size)),),
        asks=(BookLevel(price=Decimal("0.6"), size=Decimal("10")),),
        tick_size=Decimal("0.01"),
        min_order_size=Decimal("5"),
        neg_risk=False,
    )


class FakeClob:
    def __init__(self, books: dict[str, OrderBook]) -> None:
        self.books = books

    async def get_books(self, tokens: list[str]) -> Batch[OrderBook]:
        return Batch(items={t: self.books[t] for t in tokens if t in self.books})


def checker_with(live: OrderBook, rest: OrderBook | None) -> tuple[BookChecker, LiveBook]:
    """A checker of one live book; ``rest`` is what the CLOB serves for it (None: nothing)."""
    book = LiveBook("t1", live.market)
    book.replace(live)
    books = {"t1": book}
    clob = FakeClob({} if rest is None else {"t1": rest})
    checker = BookChecker(books, clob, WebSocketSettings(), StreamCounts())  # type: ignore[arg-type]
    return checker, book


def test_a_rest_book_replaces_the_live_one_only_when_at_least_as_new() -> None:
    checker, book = checker_with(rest_book(T0), rest_book(T0 - timedelta(seconds=1), bid="0.4"))
    assert (
        checker.apply_rest(rest_book(T0 - timedelta(seconds=1), bid="0.4"))
        is StreamEvent.REFETCH_LIVE_NEWER
    )
    assert book.best_bid == 0.5
    assert checker.apply_rest(rest_book(T0)) is StreamEvent.REFETCH_AGREED
    assert (
        checker.apply_rest(rest_book(T0 + timedelta(seconds=1), bid="0.45"))
        is StreamEvent.REFETCH_REPLACED
    )
    assert book.best_bid == 0.45
    assert book.floor_ms == epoch_ms(T0 + timedelta(seconds=1))


def test_a_crosscheck_divergence_is_same_time_different_levels() -> None:
    checker, book = checker_with(rest_book(T0), rest_book(T0))
    book.set_level(True, 0.5, 99.0)  # the live book went wrong
    assert checker.compare(rest_book(T0)) is StreamEvent.CROSSCHECK_DIVERGED
    assert book.bids_best_first() == [(0.5, 10.0)]
    assert checker.compare(rest_book(T0 + timedelta(seconds=5))) is StreamEvent.CROSSCHECK_MOVED


@pytest.mark.parametrize(
    ("rest_at", "moved"),
    [
        (T0, False),  # nothing happened on the venue: a quiet connection
        (T0 + timedelta(seconds=30), True),  # the venue moved and we heard nothing
        (T0 + timedelta(seconds=59.5), False),  # that change may still be on its way
    ],
)
async def test_a_stall_is_confirmed_only_by_a_venue_that_moved(
    rest_at: datetime, moved: bool
) -> None:
    checker, _ = checker_with(rest_book(T0), rest_book(rest_at))
    now_ms = epoch_ms(T0 + timedelta(seconds=60))
    assert await checker.venue_moved(["t1"], now_ms) is moved


async def test_a_book_the_venue_no_longer_has_confirms_the_stall() -> None:
    """Every market of a silent connection closed before the probe: the books are gone from
    REST, and the fills up to the close must not pass for a quiet connection's."""
    checker, book = checker_with(rest_book(T0), rest=None)
    now_ms = epoch_ms(T0 + timedelta(seconds=60))
    assert await checker.venue_moved(["t1"], now_ms) is True
    assert checker.counts[StreamEvent.STALL_CONFIRMED_BOOK_GONE] == 1
    book.invalidate()  # after the reconnect no snapshot comes for a closed market
    assert await checker.venue_moved(["t1"], now_ms) is False


async def test_hash_mismatches_mark_books_suspect_only_while_hashes_are_trusted() -> None:
    checker, book = checker_with(rest_book(T0), rest_book(T0))
    book.expected_hash = book.summary_hash()
    assert checker.verify("t1") is True
    book.expected_hash = "0" * 40
    assert checker.verify("t1") is False
    assert book.suspect, "few checks so far: a mismatch is believed"
    checker.counts.add(StreamEvent.HASH_MISMATCH, 100)  # a venue that hashes differently
    book.suspect = False
    assert checker.verify("t1") is False
    assert not book.suspect, "hashes proved unreliable: only a re-fetch"


def test_a_batch_takes_the_rest_of_the_message_it_cuts_into() -> None:
    """The writer folds a market's mirrored book changes only within one batch."""
    queue = WriteQueue(BOOK_DELTAS, 100, message_of=lambda row: row[0])
    for message, items in (("m1", 2), ("m2", 3), ("m3", 2)):
        for i in range(items):
            queue.put((message, i), 0.0)
    first, _ = queue.take(3)  # cuts into m2: takes the rest of it
    assert first == [("m1", 0), ("m1", 1), ("m2", 0), ("m2", 1), ("m2", 2)]
    second, _ = queue.take(2)  # ends on a message's end: nothing more
    assert second == [("m3", 0), ("m3", 1)]
    plain = WriteQueue(BOOK_DELTAS, 100)
    for i in range(3):
        plain.put(("m1", i), 0.0)
    assert len(plain.take(2)[0]) == 2
