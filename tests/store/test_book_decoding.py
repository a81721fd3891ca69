"""Packed order-book levels read a byte at a time (migrations 0023 and 0024) give what the hex
decoding of migration 0012 gave, and what Python packed."""

from __future__ import annotations

import random
import re
import struct

import asyncpg

from polyfarm.store.compact_snapshots import pack_micro_levels
from polyfarm.store.migrations import default_migrations_dir


def hex_decoding() -> str:
    """Migration 0012's ``book_levels`` and ``top_price`` (hex text decoding) as ``hex_…``, to
    hold the new ones to."""
    sql = (default_migrations_dir() / "0012_compact_order_books.sql").read_text()
    functions = re.findall(r"CREATE FUNCTION (?:book_levels|top_price)\(.*?\n\$\$;", sql, re.S)
    assert len(functions) == 2
    return "\n".join(f.replace("CREATE FUNCTION ", "CREATE FUNCTION hex_") for f in functions)


def ints(side: bytes) -> list[tuple[int, int]]:
    return list(struct.iter_unpack(">iq", side))


def random_packed_side(rng: random.Random) -> bytes:
    count = rng.choice((0, 1, 2, 5, 17, 60))
    sizes = [
        rng.choice((1, 10**6, rng.randint(1, 2**53), rng.randint(1, 10**12))) for _ in range(count)
    ]
    prices = [rng.choice((0, 10**6, 1, rng.randint(0, 10**6))) for _ in range(count)]
    return pack_micro_levels(list(zip(prices, sizes, strict=True)))


async def test_levels_and_top_price_read_by_bytes_as_by_hex(pool: asyncpg.Pool) -> None:
    await pool.execute(hex_decoding())
    rng = random.Random(8)
    sides = [random_packed_side(rng) for _ in range(2_000)]
    records = await pool.fetch(
        "SELECT book_levels(p)::text AS levels, hex_book_levels(p)::text AS hex_levels,"
        " top_price(p) AS top, hex_top_price(p) AS hex_top, book_levels(NULL) AS none,"
        " top_price(NULL) AS no_top FROM unnest($1::bytea[]) AS p",
        sides,
    )
    for record, side in zip(records, sides, strict=True):
        assert record["levels"] == record["hex_levels"]
        assert record["top"] == record["hex_top"]
        assert (record["none"], record["no_top"]) == (None, None)
        assert record["top"] == (ints(side)[0][0] if side else None)


async def test_a_depth_reads_the_sizes_of_the_levels_it_counts(pool: asyncpg.Pool) -> None:
    rng = random.Random(6)
    sides = [random_packed_side(rng) for _ in range(1_000)]
    counts = [rng.choice((0, 1, 5, 10, 50)) for _ in sides]
    depths = await pool.fetch(
        "SELECT levels_depth(p, n) AS depth FROM unnest($1::bytea[], $2::integer[]) AS u(p, n)",
        sides,
        counts,
    )
    for record, side, count in zip(depths, sides, counts, strict=True):
        total = sum(size for _, size in ints(side)[:count])
        assert record["depth"].hex() == (float(total) / 1e6).hex()
