"""A market's mirrored book changes stored once (migration 0020, ``polyfarm.store.mirrors``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from polyfarm.store.compact import encode_book_changes
from polyfarm.store.mirrors import (
    Folding,
    MirrorStart,
    TokenMirrors,
    fold_book_changes,
    market_pairs,
)
from polyfarm.store.rows import BOOK_DELTAS, BookDeltaRow, delta_seq
from polyfarm.store.writer import BulkWriter

from .factories import T0, token

NOW = T0 + timedelta(hours=1)
YES, NO, OTHER = token(1), token(2), token(3)
SIDS = {YES: 1, NO: 2, OTHER: 3}
PAIRS = {1: 2}


def change(
    token_id: str,
    side: str,
    price: float,
    size: float,
    bid: float | None,
    ask: float | None,
    *,
    at: int = 0,
    received_ms: int = 40,
    market: str = "100",
) -> BookDeltaRow:
    ts = T0 + timedelta(milliseconds=at)
    seq = delta_seq(side, repr(price), repr(size))
    return BookDeltaRow(
        ts,
        token_id,
        market,
        seq,
        side,
        price,
        size,
        bid,
        ask,
        ts + timedelta(milliseconds=received_ms),
    )


def pair(at: int = 0, *, price: float = 0.49, size: float = 120.0) -> list[BookDeltaRow]:
    """One level change as the venue sends it: on YES and mirrored on NO, each with its
    token's own best bid and ask."""
    return [
        change(YES, "BUY", price, size, 0.49, 0.51, at=at),
        change(NO, "SELL", round(1 - price, 4), size, 0.49, 0.51, at=at),
    ]


def fold(rows: list[BookDeltaRow], start: datetime = T0) -> list[tuple[Any, ...]]:
    return fold_book_changes(encode_book_changes(rows, SIDS), Folding(PAIRS, start))


def test_an_exact_mirror_is_folded_into_the_lower_sids_row() -> None:
    yes, no = pair()
    (row,) = fold([no, yes])
    assert row[0] == SIDS[YES]
    assert row[2] == yes.seq
    assert row[-1] == no.seq  # mirror_seq: the NO row's own seq


@pytest.mark.parametrize(
    "no",
    [
        change(NO, "BUY", 0.51, 120.0, 0.49, 0.51),  # the same side
        change(NO, "SELL", 0.52, 120.0, 0.49, 0.51),  # not 1 - p
        change(NO, "SELL", 0.51, 121.0, 0.49, 0.51),  # another size
        change(NO, "SELL", 0.51, 120.0, 0.48, 0.51),  # a best bid that is not 1 - best ask
        change(NO, "SELL", 0.51, 120.0, 0.49, None),  # a best ask missing
        change(NO, "SELL", 0.51, 120.0, 0.49, 0.51, at=1),  # another message time
        change(NO, "SELL", 0.51, 120.0, 0.49, 0.51, received_ms=41),  # received apart
        change(OTHER, "SELL", 0.51, 120.0, 0.49, 0.51),  # a token of no pair
    ],
)
def test_anything_but_an_exact_mirror_is_stored_as_it_came(no: BookDeltaRow) -> None:
    yes = pair()[0]
    assert fold([yes, no]) == encode_book_changes([yes, no], SIDS)


def test_each_row_folds_at_most_once_and_order_is_kept() -> None:
    yes, no = pair()
    folded = fold([yes, no, yes, no, no])  # a repeated change: two folds, one left over
    assert [(row[0], row[-1]) for row in folded] == [(1, no.seq), (2, None), (1, no.seq)]


def test_rows_before_the_start_are_not_folded() -> None:
    rows = [*pair(at=0), *pair(at=5)]
    folded = fold(rows, start=T0 + timedelta(milliseconds=5))
    assert [(row[0], row[-1] is not None) for row in folded] == [(1, False), (2, False), (1, True)]


def test_pairs_are_the_markets_with_two_tokens_in_the_batch() -> None:
    rows = [*pair(), change(OTHER, "BUY", 0.3, 1.0, None, None, market="200")]
    assert market_pairs(rows, SIDS) == {(1, 2)}
    three = [*rows, change(OTHER, "BUY", 0.3, 1.0, None, None)]  # a third token in market 100
    assert market_pairs(three, SIDS) == set()


# -- through the writer and the view ----------------------------------------------------------


def writer(pool: asyncpg.Pool) -> BulkWriter:
    return BulkWriter(pool, max_future_skew_s=3600, clock=lambda: NOW)


def venue_changes(count: int) -> list[BookDeltaRow]:
    """``count`` messages, each a mirrored pair, and one unmirrored change now and then."""
    rows = []
    for i in range(count):
        rows.extend(pair(at=i, price=round(0.01 + (i % 98) / 100, 2), size=float(10 + i)))
        if i % 7 == 0:
            rows.append(change(NO, "BUY", 0.2, float(i + 1), 0.2, 0.8, at=i))
    return rows


async def view_rows(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    columns = ", ".join(BOOK_DELTAS.columns)
    rows = await pool.fetch(f"SELECT {columns} FROM book_deltas")
    return sorted(tuple(row) for row in rows)


def as_stored(rows: list[BookDeltaRow]) -> list[tuple[Any, ...]]:
    return sorted(tuple(row) for row in rows)


async def test_the_view_gives_back_every_change_while_half_the_rows_are_stored(
    pool: asyncpg.Pool,
) -> None:
    rows = venue_changes(300)
    result = await writer(pool).write(BOOK_DELTAS, rows)
    assert (result.inserted, result.duplicates) == (len(rows), 0)
    assert await view_rows(pool) == as_stored(rows)
    stored = await pool.fetchval("SELECT count(*) FROM book_changes")
    assert stored == 300 + 43  # a row per message, and the unmirrored ones
    assert await pool.fetchval("SELECT count(*) FROM token_mirrors") == 1

    again = await writer(pool).write(BOOK_DELTAS, rows)  # a replay: nothing twice
    assert (again.inserted, again.duplicates) == (0, len(rows))
    assert await view_rows(pool) == as_stored(rows)


async def test_a_folded_batch_meeting_unfolded_rows_keeps_every_change_once(
    pool: asyncpg.Pool,
) -> None:
    rows = venue_changes(60)
    yes_only = [row for row in rows if row.token_id == YES]
    await pool.execute("UPDATE mirror_folding SET fold_from = NULL")
    plain = writer(pool)
    await plain.write(BOOK_DELTAS, yes_only[:30])  # a writer that did not fold, and saw half
    await pool.execute("UPDATE mirror_folding SET fold_from = '-infinity'")

    result = await writer(pool).write(BOOK_DELTAS, rows)
    assert result.inserted + 30 == len(rows)
    assert await view_rows(pool) == as_stored(rows)


async def test_folding_waits_for_its_start(pool: asyncpg.Pool) -> None:
    await pool.execute("UPDATE mirror_folding SET fold_from = NULL")
    rows = venue_changes(20)
    await writer(pool).write(BOOK_DELTAS, rows)
    assert await pool.fetchval("SELECT count(*) FROM book_changes") == len(rows)
    assert await view_rows(pool) == as_stored(rows)


async def test_folding_starts_once_no_older_instance_is_live(pool: asyncpg.Pool) -> None:
    await pool.execute("UPDATE mirror_folding SET fold_from = NULL")
    await pool.execute(
        "INSERT INTO instance_health (collector, instance, updated_at) "
        "VALUES ('prices', 'old-host', now())"
    )
    start = MirrorStart(pool, "new-host")
    assert not await start.step()
    assert await pool.fetchval("SELECT fold_from FROM mirror_folding") is None

    await pool.execute("INSERT INTO mirror_writers (instance) VALUES ('old-host')")  # upgraded
    assert await start.step()
    fold_from = await pool.fetchval("SELECT fold_from FROM mirror_folding")
    now = await pool.fetchval("SELECT now()")
    assert timedelta(minutes=1) < fold_from - now <= timedelta(minutes=2)
    assert await start.step()  # set once: a second instance leaves it as it is
    assert await pool.fetchval("SELECT fold_from FROM mirror_folding") == fold_from


async def test_a_writer_reads_the_start_again_until_it_is_set(pool: asyncpg.Pool) -> None:
    await pool.execute("UPDATE mirror_folding SET fold_from = NULL")
    now = [0.0]
    mirrors = TokenMirrors(recheck_s=20.0, monotonic=lambda: now[0])
    one = BulkWriter(pool, max_future_skew_s=3600, clock=lambda: NOW, mirrors=mirrors)
    first, second, third = (pair(at=i) for i in range(3))
    await one.write(BOOK_DELTAS, first)
    await pool.execute("UPDATE mirror_folding SET fold_from = '-infinity'")
    now[0] = 19.0  # read 19 s ago: not again yet
    await one.write(BOOK_DELTAS, second)
    now[0] = 20.0
    await one.write(BOOK_DELTAS, third)
    folded = await pool.fetchval("SELECT count(*) FROM book_changes WHERE mirror_seq IS NOT NULL")
    assert (await pool.fetchval("SELECT count(*) FROM book_changes"), folded) == (5, 1)
    assert await view_rows(pool) == as_stored([*first, *second, *third])
