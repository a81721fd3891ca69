"""Packed order-book levels read a byte at a time (migrations 0023 and 0024) give what the hex
decoding of migration 0012 gave, and what Python packed."""

from __future__ import annotations

import random
import struct

import asyncpg

from polyfarm.store.compact_snapshots import pack_micro_levels

# Migration 0012's definitions, to hold the new ones to.
HEX_DECODING = """
CREATE FUNCTION hex_book_levels(packed bytea) RETURNS jsonb LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_array(
               from_micros(('x' || encode(substr(packed, i, 4), 'hex'))::bit(32)::integer),
               from_micros(('x' || encode(substr(packed, i + 4, 8), 'hex'))::bit(64)::bigint))
               ORDER BY i), '[]'::jsonb)
    FROM generate_series(1, length(packed), 12) AS i
$$;
CREATE FUNCTION hex_top_price(packed bytea) RETURNS integer LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN length(packed) >= 12
                THEN ('x' || encode(substr(packed, 1, 4), 'hex'))::bit(32)::integer END
$$;
"""


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
    await pool.execute(HEX_DECODING)
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
