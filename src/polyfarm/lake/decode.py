"""What a day of a time series is read as from the database, and how it becomes public columns.

The public views (migrations 0011-0013) join ``token_keys`` for the ids and decode micro-units
row by row. A bulk reader does better without both: it asks for ``token_sid`` instead of the
ids (78-byte strings twice a row on the wire; ``polyfarm.lake.ordering`` puts them back from a
small lookup) and, where the decoding is plain arithmetic, reads the compact storage table
itself and divides the micro-units in Arrow, a column at a time. IEEE division of an exact
integer by 1e6 is correctly rounded, so the doubles are the very ones the views' ``from_micros``
gives (``polyfarm.store.compact`` holds it to that).

Tables whose decoding is more than arithmetic (codes to names, byte strings to hex, book
levels) are read through their view, without the id columns: PostgreSQL then leaves the join
out, the view's columns being all it computes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from polyfarm.lake.layout import LakeTable
from polyfarm.store.rows import TABLE_SPECS

MICROS = 1e6
ID_COLUMNS = ("token_id", "market_id")
SID = "token_sid"

Decoder = Callable[[pa.Table], pa.Table]


@dataclass(frozen=True)
class StorageRead:
    relation: str  # the table or view read
    columns: tuple[str, ...]  # what is asked of it, token_sid among them
    stored: str  # the table whose partitions or chunks hold the rows
    # From the sorted columns (but token_sid) to the public ones (but the ids); None: the same.
    decode: Decoder | None = None


@dataclass(frozen=True)
class Derived:
    """A public column as computed from the stored ones it needs."""

    sources: tuple[str, ...]
    compute: Callable[[pa.Table], pa.Array | pa.ChunkedArray]


def _column(name: str) -> Derived:
    return Derived((name,), lambda batch: batch.column(name))


def _micros(name: str) -> Derived:
    return Derived((name,), lambda batch: from_micros(batch.column(name)))


# ``price_points`` as ``price_snapshots`` shows it (ids aside), a column at a time, so that a
# read of a few columns (candles: the time and the price) asks the server for those alone.
_PRICE_COLUMNS = {
    "ts": _column("ts"),
    "price": _micros("price"),
    "best_bid": _micros("best_bid"),
    "best_ask": _micros("best_ask"),
    "spread": Derived(
        ("best_bid", "best_ask"),
        lambda batch: from_micros(pc.subtract(batch.column("best_ask"), batch.column("best_bid"))),
    ),
    "last_trade_price": _micros("last_trade_price"),
    "volume_24h": _column("volume_24h"),
    "liquidity": _column("liquidity"),
}
_DERIVED = {"price_snapshots": ("price_points", _PRICE_COLUMNS)}


def from_micros(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Micro-units to the double nearest the decimal, as SQL's ``from_micros`` gives it."""
    return pc.divide(pc.cast(values, pa.float64()), MICROS)


def storage_read(table: LakeTable, public: Sequence[str]) -> StorageRead:
    """How ``table``'s rows are read, given the view's columns wanted, ``public`` (the ids
    among them or not: they come from ``token_sid``, which is always read)."""
    wanted = [name for name in public if name not in (*ID_COLUMNS, SID)]
    derived = _DERIVED.get(table.name)
    stored = TABLE_SPECS[table.name].storage.table
    if derived is None:
        return StorageRead(table.name, (*wanted, SID), stored)
    relation, columns_of = derived
    unknown = [name for name in wanted if name not in columns_of]
    if unknown:
        raise ValueError(f"{table.name} has no column {unknown[0]!r}")
    sources = dict.fromkeys(source for name in wanted for source in columns_of[name].sources)
    plan = {name: columns_of[name] for name in wanted}
    return StorageRead(relation, (*sources, SID), stored, lambda batch: _derive(batch, plan))


def _derive(batch: pa.Table, plan: dict[str, Derived]) -> pa.Table:
    return pa.table({name: column.compute(batch) for name, column in plan.items()})


def timestamp_literal(value: datetime) -> str:
    """A timestamptz literal of ``value``. The day's bounds go into the SQL text, not as bind
    parameters: ADBC's PostgreSQL driver streams a query without parameters as ``COPY … TO
    STDOUT`` in record batches, but fetches a parameterised one whole (a day at once)."""
    if value.tzinfo is None:
        raise ValueError("a lake bound is an aware datetime")
    return f"'{value.astimezone(UTC).isoformat()}'::timestamptz"


def day_sql(
    read: StorageRead,
    start: datetime,
    end: datetime,
    sids: Sequence[int] | None = None,
    *,
    pages: tuple[int | None, int | None] = (None, None),
    share: tuple[int, int] | None = None,
) -> str:
    """The SQL of ``read`` for ``[start, end)`` (and the tokens ``sids`` only, if given; the
    rows on pages ``[first, end)`` of each partition only, if given, either end open when
    None; the tokens whose sid is ``i`` modulo ``n`` only, if ``share`` is ``(i, n)``),
    unordered (the client sorts)."""
    columns = ", ".join(read.columns)
    where = f"ts >= {timestamp_literal(start)} AND ts < {timestamp_literal(end)}"
    for op, page in ((">=", pages[0]), ("<", pages[1])):
        if page is not None:
            where += f" AND ctid {op} '({int(page)},0)'::tid"
    if share is not None:
        where += f" AND {SID} % {int(share[1])} = {int(share[0])}"
    if sids is not None:
        listed = ",".join(str(int(sid)) for sid in sids)  # integers: nothing else gets in
        where += f" AND {SID} = ANY('{{{listed}}}'::integer[])"
    return f"SELECT {columns} FROM {read.relation} WHERE {where}"  # noqa: S608 - our names
