"""How the time series are stored: public rows in, compact records out (pure: no I/O).

Producers hand the writer the public row types of ``polyfarm.store.rows`` (Polymarket ids,
doubles, text codes); the journal keeps those too. Here they become the records of the compact
tables of migration 0011:

* a token id becomes its ``token_sid`` (``polyfarm.store.keys``); the market id is not stored
  (the registry has it);
* prices become integer micro-units, sizes bigint micro-units. The venue's prices have at most
  four decimals (ticks down to 0.0001), midpoints at most five, sizes at most six, so each is
  an exact number of micro-units. ``from_micros`` divides that integer by 1e6; IEEE division is
  correctly rounded, so the result is the double nearest to the decimal: the double the
  producer had when it parsed (or computed exactly, ``exact_spread`` / ``exact_midpoint``) that
  decimal. Values that are not venue decimals (Gamma's volume and liquidity, fees) stay
  doubles;
* text codes become small integers (``Side``, ``Source``; the SQL functions ``side_name`` and
  ``source_name`` decode them), a spread is not stored (the views compute ``best_ask -
  best_bid`` from the integers, exactly), and a ``0x``-hex transaction hash is its 32 bytes.

Price points, most of the rows, have their own binary ``COPY`` encoding (``BinaryCopy``): one
``struct`` call per row, cheaper than asyncpg's per-value encoders.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MICROS = 1_000_000


def to_micros(value: float) -> int:
    """The nearest micro-unit (halves up), as SQL's ``to_micros`` rounds."""
    return math.floor(float(value) * MICROS + 0.5)


def optional_micros(value: float | None) -> int | None:
    return None if value is None else to_micros(value)


def from_micros(value: int) -> float:
    return value / MICROS


def same_double(a: float, b: float) -> bool:
    """Bit for bit, as a view must give a value back: ``-0.0`` is not ``0.0`` here."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def exact_spread(bid: float, ask: float) -> float:
    """``ask - bid`` of two venue prices as the double nearest to the decimal difference
    (the double subtraction is off by an ulp as often as not: 0.51 - 0.49 != 0.02)."""
    return (to_micros(ask) - to_micros(bid)) / MICROS


def exact_midpoint(bid: float, ask: float) -> float:
    """``(bid + ask) / 2`` of two venue prices as the double nearest to the decimal."""
    return (to_micros(bid) + to_micros(ask)) / (2 * MICROS)


class Side(enum.IntEnum):
    """``side`` columns; SQL decodes them with ``side_name()``."""

    BUY = 1
    SELL = 2


class Source(enum.IntEnum):
    """``source`` columns; SQL decodes them with ``source_name()``. The value of each member's
    lower-cased name is the text the public views show."""

    REST = 1
    WS = 2
    DATA_API = 3


SIDE_CODES: Mapping[str, int] = {side.name: side.value for side in Side}
SOURCE_CODES: Mapping[str, int] = {source.name.lower(): source.value for source in Source}


def hex_bytes(text: str, size: int, prefix: str = "") -> bytes | None:
    """The ``size`` bytes that ``prefix`` + ``2 * size`` lower-case hex digits spell; None for
    any other spelling (stored as text, so nothing is lost)."""
    digits = text[len(prefix) :]
    if not text.startswith(prefix) or len(digits) != 2 * size:
        return None
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return None
    return raw if raw.hex() == digits else None


def transaction_hash_bytes(text: str) -> bytes | None:
    """A transaction hash, ``0x`` + 64 hex digits, as its 32 bytes."""
    return hex_bytes(text, 32, "0x")


def book_hash_bytes(text: str) -> bytes | None:
    """The venue's hash of a book, 40 hex digits, as its 20 bytes."""
    return hex_bytes(text, 20)


# -- storage specs ----------------------------------------------------------------------------

SidMap = Mapping[str, int]


@dataclass(frozen=True)
class BinaryCopy:
    """Records as binary COPY tuples, one ``bytes`` each, whose columns (``columns``) start
    with the unique index's key, so that sorting the tuples (plain ``bytes`` order) sorts a
    batch in index order."""

    columns: tuple[str, ...]
    encode: Callable[[Sequence[Sequence[Any]], SidMap], list[bytes]]


@dataclass(frozen=True)
class Storage:
    """The table a public row type is stored in, and how.

    ``encode`` turns public records (validated, in the row type's column order) into records
    of ``columns``, given the sid of every token among them; None: stored as they are, in a
    table of the public name. ``binary``, when set, is used instead of ``encode``."""

    table: str
    columns: tuple[str, ...]
    encode: Callable[[Sequence[Sequence[Any]], SidMap], list[tuple[Any, ...]]] | None = None
    binary: BinaryCopy | None = None
    # How many of ``columns``, from the first, make the unique key: encoded batches are
    # written in key order, so that two writers storing the same rows at once (two collectors,
    # a repair beside the live stream) wait for each other in one order and never deadlock.
    key_width: int = 2
    # Rows of a market's two tokens that mirror each other may be stored as one
    # (``polyfarm.store.mirrors``); ``represented`` is SQL of how many public rows a stored
    # row stands for.
    mirrored: bool = False
    represented: str = "1"

    @property
    def keyed(self) -> bool:
        """Whether records need token sids."""
        return self.encode is not None or self.binary is not None


# -- trades and book deltas -------------------------------------------------------------------

TRADE_FILL_COLUMNS = (
    "token_sid", "ts", "trade_key", "price", "size", "side", "fee_rate_bps",
    "transaction_hash", "transaction_text", "source", "exchange_ms", "received_at",
)  # fmt: skip


def encode_trade_fills(records: Sequence[Sequence[Any]], sids: SidMap) -> list[tuple[Any, ...]]:
    """TradeRow records as ``TRADE_FILL_COLUMNS`` records."""
    encoded = []
    for ts, token_id, _, key, price, size, side, fee, tx, source, exchange_ms, received in records:
        raw = None if tx is None else transaction_hash_bytes(tx)
        encoded.append(
            (
                sids[token_id],
                ts,
                key,
                to_micros(price),
                to_micros(size),
                SIDE_CODES[side],
                fee,
                raw,
                tx if raw is None else None,
                SOURCE_CODES[source],
                exchange_ms,
                received,
            )
        )
    return encoded


BOOK_CHANGE_COLUMNS = (
    "token_sid", "ts", "seq", "side", "price", "size", "best_bid", "best_ask", "received_at",
    "mirror_seq",
)  # fmt: skip


def encode_book_changes(records: Sequence[Sequence[Any]], sids: SidMap) -> list[tuple[Any, ...]]:
    """BookDeltaRow records as ``BOOK_CHANGE_COLUMNS`` records."""
    return [
        (
            sids[token_id],
            ts,
            seq,
            SIDE_CODES[side],
            to_micros(price),
            to_micros(size),
            optional_micros(bid),
            optional_micros(ask),
            received,
            None,  # polyfarm.store.mirrors folds a pair's rows into one
        )
        for ts, token_id, _, seq, side, price, size, bid, ask, received in records
    ]


# -- price points: binary COPY ----------------------------------------------------------------
# Tuples lead with token_sid, then ts, both big-endian and (for sids, and times after 2000)
# positive, so ``bytes`` order is index order. One layout when no value is NULL; a row with a
# NULL takes the slow path.

COPY_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
COPY_BINARY_TRAILER = b"\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NULL_FIELD = b"\xff\xff\xff\xff"
_INT_FIELD = struct.Struct(">ii")
_FLOAT_FIELD = struct.Struct(">id")
PRICE_POINT_COLUMNS = (
    "token_sid", "ts", "price", "best_bid", "best_ask", "last_trade_price", "volume_24h",
    "liquidity",
)  # fmt: skip
_POINT_HEAD = struct.Struct(">hiiiq")  # field count; token_sid; ts (microseconds since 2000)
# field count, sid, ts, four int4 prices, two float8 amounts: (length, value) pairs
_POINT = struct.Struct(">hiiiq" + "ii" * 4 + "id" * 2)
_POINT_FIELDS = len(PRICE_POINT_COLUMNS)


def _point_with_nulls(
    sid: int, micros: int, prices: Sequence[Any], amounts: Sequence[Any]
) -> bytes:
    parts = [_POINT_HEAD.pack(_POINT_FIELDS, 4, sid, 8, micros)]
    parts += [_NULL_FIELD if p is None else _INT_FIELD.pack(4, to_micros(p)) for p in prices]
    parts += [_NULL_FIELD if a is None else _FLOAT_FIELD.pack(8, a) for a in amounts]
    return b"".join(parts)


def encode_price_points(records: Sequence[Sequence[Any]], sids: SidMap) -> list[bytes]:
    """PriceSnapshotRow records as binary COPY tuples in ``PRICE_POINT_COLUMNS`` order. The
    spread is not stored (validation made sure it is ``best_ask - best_bid``)."""
    micros_of: dict[datetime, int] = {}
    encoded: list[bytes] = []
    append = encoded.append
    pack = _POINT.pack
    for ts, token_id, _, price, bid, ask, _, last, volume, liquidity in records:
        micros = micros_of.get(ts)
        if micros is None:
            micros = micros_of[ts] = (ts - _PG_EPOCH) // _MICROSECOND
        sid = sids[token_id]
        try:
            # Prices are validated to [0, 1]: adding a half and truncating rounds them.
            # fmt: off
            append(pack(
                _POINT_FIELDS, 4, sid, 8, micros,
                4, int(price * 1e6 + 0.5), 4, int(bid * 1e6 + 0.5), 4, int(ask * 1e6 + 0.5),
                4, int(last * 1e6 + 0.5), 8, volume, 8, liquidity,
            ))
            # fmt: on
        except (TypeError, struct.error):  # a NULL somewhere
            append(_point_with_nulls(sid, micros, (price, bid, ask, last), (volume, liquidity)))
    return encoded


PRICE_POINTS = Storage(
    "price_points",
    PRICE_POINT_COLUMNS,
    binary=BinaryCopy(PRICE_POINT_COLUMNS, encode_price_points),
)
TRADE_FILLS = Storage("trade_fills", TRADE_FILL_COLUMNS, encode=encode_trade_fills, key_width=3)
BOOK_CHANGES = Storage(
    "book_changes",
    BOOK_CHANGE_COLUMNS,
    encode=encode_book_changes,
    key_width=3,
    mirrored=True,
    represented="1 + (mirror_seq IS NOT NULL)::integer",
)
