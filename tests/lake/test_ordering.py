"""Sorting a day by token id then time in bounded memory: pure Arrow, no database."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from polyfarm.lake import ordering
from polyfarm.lake.ordering import (
    RANK,
    NotInOrder,
    TokenIndex,
    in_stored_order,
    lake_schema,
    row_groups,
    sort_keys,
    sort_rows,
    sorted_slices,
    with_ids,
    with_rank,
)
from polyfarm.lake.prefetch import merged, prefetched

ORDER = ("token_id", "ts")
PUBLIC = pa.schema(
    [("ts", pa.int64()), ("token_id", pa.string()), ("market_id", pa.string()), ("v", pa.int64())]
)


def index_of(count: int, seed: int = 1) -> TokenIndex:
    """``count`` tokens with sids 1.., their ids in an order unlike the sids', two a market."""
    rng = random.Random(seed)
    ids = [str(rng.randrange(10**20, 10**21)) for _ in range(count)]
    return TokenIndex.build(
        pa.table(
            {
                "token_sid": pa.array(range(1, count + 1), pa.int32()),
                "token_id": ids,
                "market_id": [f"m{sid // 2}" for sid in range(1, count + 1)],
            }
        )
    )


def day_batches(sids: int, minutes: int, batch_rows: int, seed: int = 2) -> list[pa.RecordBatch]:
    """Every sid once a minute (plus one sid the registry lacks), shuffled, in batches."""
    rows = [(ts, sid) for ts in range(minutes) for sid in range(1, sids + 2)]
    random.Random(seed).shuffle(rows)
    table = pa.table(
        {
            "ts": [ts for ts, _ in rows],
            "token_sid": pa.array([sid for _, sid in rows], pa.int32()),
            "v": [ts * 1000 + sid for ts, sid in rows],
        }
    )
    return table.to_batches(max_chunksize=batch_rows)


def test_ranks_follow_token_ids_in_byte_order_and_unknown_sids_rank_last() -> None:
    keys = pa.table(
        {
            "token_sid": pa.array([1, 2, 3, 5], pa.int32()),
            "token_id": ["9", "10", "100", "11"],  # byte order: 10, 100, 11, 9
            "market_id": ["a", "b", "c", "d"],
        }
    )
    index = TokenIndex.build(keys)
    assert index.token_ids.to_pylist() == ["10", "100", "11", "9"]
    assert index.market_ids.to_pylist() == ["b", "c", "d", "a"]
    ranks = index.ranks(pa.array([5, 1, 2, 3, 4, 0, 6, 99], pa.int32()))
    assert ranks.tolist() == [2, 3, 0, 1, 4, 4, 4, 4]  # 4, 0 and beyond: no such token


def sort_all(
    batches: list[pa.RecordBatch], index: TokenIndex, slice_rows: int, spill: Path
) -> tuple[list[pa.Table], pa.Table]:
    slices = list(sorted_slices(batches, index, ORDER, slice_rows=slice_rows, spill_dir=spill))
    return slices, pa.concat_tables(slices)


def test_a_spilled_day_sorts_as_one_sorted_in_memory(tmp_path: Path) -> None:
    index = index_of(300)
    batches = day_batches(300, 40, 1000)
    whole, in_memory = sort_all(batches, index, 10**9, tmp_path)
    slices, spilled = sort_all(batches, index, 2000, tmp_path)
    assert len(whole) == 1
    assert len(slices) > 3
    assert max(s.num_rows for s in slices) <= 2000
    assert spilled.equals(in_memory)
    keys = list(zip(in_memory[RANK].to_pylist(), in_memory["ts"].to_pylist(), strict=True))
    assert keys == sorted(keys)
    assert not list(tmp_path.iterdir())  # the spill files are gone once read


def test_row_groups_do_not_depend_on_the_slicing(tmp_path: Path) -> None:
    index = index_of(40)
    batches = day_batches(40, 30, 100)
    one = list(row_groups(sort_all(batches, index, 10**9, tmp_path)[0], 128))
    many = list(row_groups(sort_all(batches, index, 97, tmp_path)[0], 128))
    assert [g.num_rows for g in one] == [g.num_rows for g in many]
    assert {g.num_rows for g in one[:-1]} == {128}
    assert all(a.equals(b) for a, b in zip(one, many, strict=True))


def test_ids_are_dictionaries_of_the_groups_own_tokens(tmp_path: Path) -> None:
    index = index_of(40)
    _, table = sort_all(day_batches(40, 3, 50), index, 10**9, tmp_path)
    schema = lake_schema(PUBLIC)
    groups = [with_ids(g, g[RANK].to_numpy(), index, schema) for g in row_groups([table], 20)]
    for group in groups:
        tokens = group["token_id"].combine_chunks()
        assert len(tokens.dictionary) == len({t for t in tokens.to_pylist() if t is not None})
    plain = pa.concat_tables(groups).cast(PUBLIC)
    expected_ids = [
        None if r == index.count else index.token_ids[r].as_py() for r in table[RANK].to_numpy()
    ]
    assert plain["token_id"].to_pylist() == expected_ids
    sids_by_rank = np.argsort(index.rank_of_sid[1:]) + 1
    sid_of = dict(zip(index.token_ids.to_pylist(), sids_by_rank, strict=True))
    markets = [None if t is None else f"m{sid_of[t] // 2}" for t in expected_ids]
    assert plain["market_id"].to_pylist() == markets
    assert plain["token_id"].null_count == 3  # the unregistered sid's rows, a minute each


def test_prefetched_items_arrive_in_order_and_a_failure_is_raised() -> None:
    assert list(prefetched(range(100), depth=3)) == list(range(100))
    assert sorted(merged([range(50), range(50, 100)])) == list(range(100))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("broken source")

    with pytest.raises(ValueError, match="broken source"):
        list(prefetched(failing()))


def test_leaving_early_stops_the_producer() -> None:
    closed = []

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.append(True)

    stream = prefetched(endless(), depth=2)
    assert next(stream) == 0
    stream.close()  # type: ignore[attr-defined]
    assert closed == [True]


def test_the_packed_key_sorts_as_arrow_sorts_on_every_column() -> None:
    rng = random.Random(5)
    rows = 2000
    ranks = [rng.randrange(0, 300) for _ in range(rows)]
    ts = [rng.randrange(0, 86_400_000_000) for _ in range(rows)]  # a day of microseconds
    seq = [rng.randrange(0, 3) for _ in range(rows)]
    table = pa.table(
        {
            RANK: pa.array(ranks, pa.uint32()),
            "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "seq": seq,
        }
    )
    expected = table.sort_by(sort_keys(ORDER))
    assert sort_rows(table, ORDER).equals(expected)
    again = table.slice(0, 50)
    again = again.set_column(2, "seq", pa.array([9] * 50))  # the same (rank, ts), other rows
    tied = pa.concat_tables([again, table])
    assert sort_rows(tied, ORDER).equals(tied.sort_by(sort_keys(ORDER)))
    with_seq = ("token_id", "ts", "seq")
    assert sort_rows(tied, with_seq).equals(tied.sort_by(sort_keys(with_seq)))


DAY_START = datetime(2026, 3, 2, tzinfo=UTC)


def stored_day(sids: int, minutes: int) -> pa.Table:
    """Every sid once a minute, in the lake's order (rank, then time), as a sealed day's heap
    would hold it had every row gone onto the page after the last."""
    index = index_of(sids)
    order = sorted(
        ((int(index.ranks(pa.array([sid], pa.int32()))[0]), ts, sid))
        for ts in range(minutes)
        for sid in range(1, sids + 1)
    )
    return pa.table(
        {
            "ts": pa.array(
                [DAY_START + timedelta(minutes=ts) for _, ts, _ in order], pa.timestamp("us", "UTC")
            ),
            "token_sid": pa.array([sid for _, _, sid in order], pa.int32()),
            "v": [ts * 1000 + sid for _, ts, sid in order],
        }
    )


def into_pages(day: pa.Table, seed: int) -> pa.Table:
    """``day`` as an INSERT of its rows in order leaves a heap: each row onto the last page,
    or into the first earlier page with the free space for it (PostgreSQL's free space map),
    or onto a new page; rows of varying size, so earlier pages keep some space."""
    rng = random.Random(seed)
    pages: list[list[int]] = []
    free: list[int] = []
    for row in range(day.num_rows):
        size = rng.choice((90, 100, 104, 120))
        page = next((n for n, space in enumerate(free) if space >= size), None)
        if page is None or (pages and free[-1] >= size):
            page = len(pages) - 1 if pages and free[-1] >= size else None
        if page is None:
            pages.append([])
            free.append(1000)
            page = len(pages) - 1
        pages[page].append(row)
        free[page] -= size
    return day.take(pa.array([row for page in pages for row in page]))


def stored_order(table: pa.Table, batch_rows: int, index: TokenIndex) -> pa.Table:
    return pa.concat_tables(
        in_stored_order(table.to_batches(max_chunksize=batch_rows), index, DAY_START)
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("window", [40, 997, ordering.WINDOW_ROWS])
def test_a_sealed_day_read_as_stored_comes_out_in_order_with_its_rows_out_of_place(
    seed: int, window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ordering, "WINDOW_ROWS", window)
    index = index_of(50)
    day = stored_day(50, 60)
    heap = into_pages(day, seed)
    assert not heap.equals(day)  # some rows out of place: what the test is about
    for batch_rows in (1, 100, 10**6):
        found = stored_order(heap, batch_rows, index)
        assert found.equals(ranked(day, index))


def ranked(day: pa.Table, index: TokenIndex) -> pa.Table:
    return pa.Table.from_batches([with_rank(day.combine_chunks().to_batches()[0], index)])


def outcome(heap: pa.Table, index: TokenIndex) -> pa.Table | None:
    """All that ``in_stored_order`` hands on, or None if it refuses ``heap`` (what it handed
    on before then being in order)."""
    found: list[pa.Table] = []
    try:
        for table in in_stored_order(heap.to_batches(max_chunksize=100), index, DAY_START):
            found.append(table)
    except NotInOrder:
        if found:
            whole = pa.concat_tables(found)
            keys = list(zip(whole[RANK].to_pylist(), whole["ts"].to_pylist(), strict=True))
            assert keys == sorted(set(keys))
        return None
    return pa.concat_tables(found)


@pytest.mark.parametrize("window", [40, ordering.WINDOW_ROWS])
def test_a_day_out_of_order_comes_out_in_order_or_is_refused_before_a_row_out_of_order(
    window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ordering, "WINDOW_ROWS", window)
    index = index_of(50)
    day = stored_day(50, 60)
    heap = into_pages(day, seed=1)
    late = heap.slice(500, 1)  # a row written into the day after it was sealed: at the end
    appended = pa.concat_tables([heap.slice(0, 500), heap.slice(501), late])
    shuffled = day.take(pa.array(random.Random(3).sample(range(day.num_rows), day.num_rows)))
    for stored in (appended, shuffled):
        found = outcome(stored, index)
        assert found is None or found.equals(ranked(day, index))
    # A window holds the rows after a row out of place: a few rows a page, not a shuffle.
    assert (outcome(shuffled, index) is None) == (window < day.num_rows)
    twice = pa.concat_tables([heap.slice(0, 1000), heap.slice(999)])  # one row stored twice
    outside = heap.set_column(0, "ts", pc.add(heap["ts"], pa.scalar(timedelta(days=2))))
    assert outcome(twice, index) is None
    assert outcome(outside, index) is None


def test_too_many_rows_out_of_place_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    index = index_of(50)
    heap = into_pages(stored_day(50, 60), seed=1)
    assert outcome(heap, index) is not None
    monkeypatch.setattr(ordering, "ASIDE_ROWS", 3)
    assert outcome(heap, index) is None
