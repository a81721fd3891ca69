"""``Farm``: one object that reads what polyfarm collected, as polars DataFrames.

    from polyfarm.data import Farm
    farm = Farm.from_settings()                 # the database and lake polyfarm uses
    df = farm.candles("0x5f…", "5m", "2026-03-01", "2026-04-01")

Rows come from the Parquet lake for days before the database's oldest whole day and from the
database for the rest, so a range that spans both is read once, without a duplicate at the seam
(each day is read from exactly one side). Candles and bars are computed from the raw rows by
``polyfarm.data.bars``, the same code on both sides. Every read that spans a known hole (a
``feed_gaps`` row in the database, or in the manifest of a lake day) issues a ``HoleWarning``
naming them; ``holes()`` returns them as a frame.

Reads are synchronous (a notebook's way), through ADBC's PostgreSQL driver, which hands over
Arrow without a row ever becoming a Python object.
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

import polyfarm.data.bars as barmaths
from polyfarm.data.stored import StoredRows, frame
from polyfarm.data.training import training_set as build_training_set
from polyfarm.lake.layout import (
    DIMENSIONS_BY_NAME,
    TABLES_BY_NAME,
    day_of_partition,
    decode_entry,
    manifest_file,
    partition_file,
)
from polyfarm.lake.reader import DayReader
from polyfarm.lake.storage import Lake, open_configured_lake
from polyfarm.settings import Settings
from polyfarm.store.migrations import TIMESCALEDB_PRESENT
from polyfarm.store.rows import TABLE_SPECS

_ID = re.compile(r"^[0-9A-Za-z]+$")
_MARKET_ID = re.compile(r"^0x[0-9a-fA-F]{64}$")
TimeLike = datetime | date | str


SEAM_TTL_S = 60.0
RECENT_WINDOWS = 64  # windows whose holes are kept for the warnings
# The oldest day partition of a stored table (plain PostgreSQL; the legacy partition, from
# MINVALUE, does not match: its days are read from the lake when it has them, else here) ...
_OLDEST_PARTITION = r"""
    SELECT min((regexp_match(pg_get_expr(c.relpartbound, c.oid),
                '^FOR VALUES FROM \(''(.+)''\) TO'))[1]::timestamptz) AS oldest
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = to_regclass($1)
"""
# ... or its oldest chunk (TimescaleDB).
_OLDEST_CHUNK = """
    SELECT min(range_start) AS oldest FROM timescaledb_information.chunks
    WHERE hypertable_name = $1
"""


class HoleWarning(UserWarning):
    """The rows asked for span a known hole in the recording."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: TimeLike, end: TimeLike) -> Window:
        return cls(as_time(start), as_time(end))


class Farm:
    def __init__(self, dsn: str | None, lake: Lake | None = None) -> None:
        self._dsn = dsn
        self._lake = lake
        self._stored: StoredRows | None = None  # the database side, opened on first use
        self._days: DayReader | None = None  # the lake side, made on first use
        self._seams: dict[str, tuple[datetime | None, float]] = {}
        # Every stream's known holes of the windows read lately, for the warnings.
        self._window_holes: dict[Window, tuple[pl.DataFrame, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Farm:
        from polyfarm.store.database import resolve_target

        settings = settings or Settings()
        return cls(resolve_target(settings).dsn, open_configured_lake(settings))

    def close(self) -> None:
        if self._stored is not None:
            self._stored.close()
            self._stored = None

    def __enter__(self) -> Farm:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- raw tables ----------------------------------------------------------------------------

    def prices(self, tokens: str | Sequence[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return self.rows("price_snapshots", tokens, start, end)

    def trades(self, tokens: str | Sequence[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return self.rows("trades", tokens, start, end)

    def books(self, tokens: str | Sequence[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return self.rows("orderbook_snapshots", tokens, start, end)

    def deltas(self, tokens: str | Sequence[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return self.rows("book_deltas", tokens, start, end)

    def features(self, tokens: str | Sequence[str], start: TimeLike, end: TimeLike) -> pl.DataFrame:
        return self.rows("market_features", tokens, start, end)

    def rows(
        self,
        table: str,
        tokens: str | Sequence[str],
        start: TimeLike,
        end: TimeLike,
        *,
        columns: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """``table``'s rows of ``tokens`` (token ids, or market ids for all their tokens) in
        ``[start, end)``, sorted by token and time; only ``columns`` (and the sort's) when
        given, which spares the lake decoding the others and the server sending them."""
        found = self._unsorted_rows(table, tokens, Window.of(start, end), columns or ())
        return found.sort(*TABLES_BY_NAME[table].order) if found.height else found

    def _unsorted_rows(
        self, table: str, tokens: str | Sequence[str], window: Window, columns: Sequence[str] = ()
    ) -> pl.DataFrame:
        """``rows`` before the sort, for the candles and bars, which sort what they read; all
        the columns when ``columns`` is empty."""
        if table not in TABLES_BY_NAME:
            raise ValueError(f"table must be one of {sorted(TABLES_BY_NAME)}, not {table!r}")
        token_ids = self.token_ids(tokens)
        order = TABLES_BY_NAME[table].order
        wanted = [*dict.fromkeys([*order, *columns])] if columns else None
        parts = []
        for source, piece in self._split(table, window):
            if source == "lake":
                parts.append(self._from_lake(table, token_ids, piece, wanted))
            else:
                found = self._from_database(table, token_ids, piece, wanted)
                parts.append(found.select(wanted) if wanted and found.height else found)
        filled = [part for part in parts if part.height]
        self._warn_holes(token_ids, window)
        if len(filled) > 1:
            return pl.concat(filled, how="vertical_relaxed")
        return filled[0] if filled else pl.DataFrame()

    # -- derived -------------------------------------------------------------------------------

    def candles(
        self,
        tokens: str | Sequence[str],
        interval: str,
        start: TimeLike,
        end: TimeLike,
        *,
        source: str = "prices",
    ) -> pl.DataFrame:
        """OHLC of the price snapshots (``source="prices"``) or OHLCV with VWAP, trade count
        and the buy / sell split of the trades (``source="trades"``)."""
        if source == "prices":
            window = Window.of(start, end)
            prices = self._unsorted_rows("price_snapshots", tokens, window, ("price",))
            return barmaths.price_candles(prices, interval)
        if source == "trades":
            tape = self._unsorted_rows("trades", tokens, Window.of(start, end))
            return barmaths.trade_candles(tape, interval)
        raise ValueError(f"source must be 'prices' or 'trades', not {source!r}")

    def bars(
        self,
        tokens: str | Sequence[str],
        kind: str,
        size: float,
        start: TimeLike,
        end: TimeLike,
    ) -> pl.DataFrame:
        """Trade bars: ``kind`` "tick" (a bar every ``size`` trades), "volume" (every ``size``
        shares) or "dollar" (every ``size`` USD)."""
        tape = self._unsorted_rows("trades", tokens, Window.of(start, end))
        if kind == "tick":
            return barmaths.tick_bars(tape, int(size))
        if kind == "volume":
            return barmaths.volume_bars(tape, size)
        if kind == "dollar":
            return barmaths.dollar_bars(tape, size)
        raise ValueError(f"kind must be 'tick', 'volume' or 'dollar', not {kind!r}")

    def training_set(
        self,
        tokens: str | Sequence[str],
        start: TimeLike,
        end: TimeLike,
        *,
        label: str,
        as_of: TimeLike | None = None,
        horizon: timedelta | None = None,
        features: Sequence[str] | None = None,
        price_features: tuple[str, ...] = ("price",),
    ) -> pl.DataFrame:
        """Feature snapshots of ``tokens`` in ``[start, end)``, each with price columns as of
        its time and a label known by ``as_of`` (default: now): ``polyfarm.data.training``."""
        cutoff = as_of_time(as_of)
        rows = self.features(tokens, start, end)
        if features is not None:
            rows = rows.select("token_id", "market_id", "ts", *features)
        reach = as_time(end) + (horizon or timedelta(0))
        prices = self.prices(tokens, as_time(start) - timedelta(days=1), min(reach, cutoff))
        return build_training_set(
            rows,
            prices,
            label=label,
            as_of=cutoff,
            horizon=horizon,
            price_features=price_features,
            resolutions=self.resolutions() if label == "resolution" else None,
            tokens=self.tokens() if label == "resolution" else None,
        )

    # -- dimensions and holes ------------------------------------------------------------------

    def markets(self) -> pl.DataFrame:
        return self._dimension("markets")

    def tokens(self) -> pl.DataFrame:
        return self._dimension("tokens")

    def resolutions(self) -> pl.DataFrame:
        return self._dimension("market_resolutions")

    def _dimension(self, name: str) -> pl.DataFrame:
        """From the database, or (a lake only) the lake's newest snapshot of it."""
        table = DIMENSIONS_BY_NAME[name]
        if self._dsn is not None:
            return self._query(f"SELECT * FROM {name} ORDER BY {', '.join(table.order)}")  # noqa: S608
        if self._lake is None:
            return pl.DataFrame()
        days = [day_of_partition(entry) for entry in self._lake.listing(name)]
        if not days:
            return pl.DataFrame()
        path = self._lake.path(partition_file(name, max(days)))
        return _frame(pq.read_table(path, filesystem=self._lake.fs))

    def holes(
        self, start: TimeLike, end: TimeLike, tokens: str | Sequence[str] | None = None
    ) -> pl.DataFrame:
        """The known holes (``feed_gaps``) overlapping ``[start, end)``: every stream's, or
        those of ``tokens`` and their markets plus the ones that concern every market."""
        window = Window.of(start, end)
        token_ids = None if tokens is None else self.token_ids(tokens)
        return self._holes(token_ids, window)

    def token_ids(self, tokens: str | Sequence[str]) -> list[str]:
        """Token ids as given, a market id replaced by its tokens (outcome order)."""
        wanted = [tokens] if isinstance(tokens, str) else list(tokens)
        for value in wanted:
            if not _ID.match(value):
                raise ValueError(f"not a token or market id: {value!r}")
        markets = [value for value in wanted if _MARKET_ID.match(value)]
        if not markets:
            return wanted
        found = self._query(
            "SELECT market_id, token_id FROM tokens "
            "WHERE market_id = ANY(string_to_array($1, ',')) ORDER BY market_id, outcome_index",
            ",".join(markets),
        )
        by_market: dict[str, list[str]] = {}
        for row in found.iter_rows(named=True):
            by_market.setdefault(row["market_id"], []).append(row["token_id"])
        return [t for value in wanted for t in by_market.get(value, [value])]

    # -- the two sides ---------------------------------------------------------------------------

    def _split(self, table: str, window: Window) -> list[tuple[str, Window]]:
        """``window`` cut into runs of days read from one side each: the lake for a day before
        the database's oldest whole day when the lake has it, the database otherwise (a day the
        lake lacks, or one the database still holds whole: it may have had late repairs)."""
        seam = self._seam(table)
        runs: list[tuple[str, Window]] = []
        for day in days_of(window):
            start = max(window.start, midnight(day))
            end = min(window.end, midnight(day) + timedelta(days=1))
            cold = (seam is None or end <= seam) and self._lake_has(table, day)
            source = "lake" if cold else "database"
            if source == "database" and self._dsn is None:
                continue
            if runs and runs[-1][0] == source:
                runs[-1] = (source, Window(runs[-1][1].start, end))
            else:
                runs.append((source, Window(start, end)))
        return runs

    def _lake_has(self, table: str, day: date) -> bool:
        if self._lake is None:
            return False
        path = self._lake.path(partition_file(table, day))
        return bool(self._lake.fs.get_file_info(path).is_file)

    def _seam(self, table: str) -> datetime | None:
        """The start of the database's oldest whole day of ``table``: earlier days come from
        the lake. None when there is no database or the table is empty there. From the
        catalogue (the oldest day partition or chunk), not ``min(ts)``, which no index of the
        stored tables answers: at venue scale it would scan a day of rows. Kept for a minute
        (retention moves it once a day)."""
        if self._dsn is None:
            return None
        cached = self._seams.get(table)
        if cached is not None and time.monotonic() - cached[1] < SEAM_TTL_S:
            return cached[0]
        oldest = self._oldest(TABLE_SPECS[table].storage.table)
        seam = None
        if oldest is not None:
            first = oldest.astimezone(UTC)
            day = midnight(first.date())
            seam = day if first == day else day + timedelta(days=1)
        self._seams[table] = (seam, time.monotonic())
        return seam

    def _oldest(self, stored: str) -> datetime | None:
        """From the catalogue where it can: no index of the stored tables answers min(ts)."""
        found: datetime | None = self._query(_OLDEST_PARTITION, stored)["oldest"][0]
        if found is None and self._has_timescaledb():
            found = self._query(_OLDEST_CHUNK, stored)["oldest"][0]
        if found is None:
            found = self._query(f"SELECT min(ts) AS oldest FROM {stored}")["oldest"][0]  # noqa: S608
        return found

    def _has_timescaledb(self) -> bool:
        return bool(self._query(TIMESCALEDB_PRESENT)["present"][0])

    def _from_database(
        self, table: str, token_ids: list[str], window: Window, columns: list[str] | None
    ) -> pl.DataFrame:
        stored = self._database()
        return _frame(stored.rows(table, token_ids, window.start, window.end, columns))

    def _from_lake(
        self, table: str, token_ids: list[str], window: Window, columns: list[str] | None
    ) -> pl.DataFrame:
        assert self._lake is not None  # _split reads the lake only when there is one
        if self._days is None:
            self._days = DayReader(self._lake)
        span = (window.start, window.end)
        parts = [self._days.read(table, day, token_ids, span, columns) for day in days_of(window)]
        found = [part for part in parts if part is not None]
        if not found:
            return pl.DataFrame()
        return _frame(pa.concat_tables(found))

    def _holes(self, token_ids: list[str] | None, window: Window) -> pl.DataFrame:
        if self._dsn is None:
            return self._lake_holes(token_ids, window)
        return self._query(
            "SELECT stream, token_id, market_id, gap_start, gap_end, reason, repaired "
            "FROM feed_gaps WHERE gap_start < $2 AND gap_end > $1 AND ($3 = '' OR token_id IS "
            "NULL OR token_id = ANY(string_to_array($3, ','))) ORDER BY gap_start",
            window.start,
            window.end,
            "" if token_ids is None else ",".join(token_ids),
        )

    def _lake_holes(self, token_ids: list[str] | None, window: Window) -> pl.DataFrame:
        rows: list[dict[str, Any]] = []
        if self._lake is None:
            return pl.DataFrame(rows)
        for day in days_of(window):
            where = manifest_file("price_snapshots", day)
            data = self._lake.read(where)
            if data is None:
                continue
            for gap in decode_entry(data, where).gaps:
                wanted = token_ids is None or gap.token_id is None or gap.token_id in token_ids
                if wanted and gap.gap_start < window.end and gap.gap_end > window.start:
                    rows.append({f: getattr(gap, f) for f in gap.__struct_fields__})
        return pl.DataFrame(rows)

    def _warn_holes(self, token_ids: list[str], window: Window) -> None:
        found = self._recent_holes(window)
        if found.height:
            found = found.filter(pl.col("token_id").is_null() | pl.col("token_id").is_in(token_ids))
        if found.height:
            streams = ", ".join(sorted(set(found["stream"].to_list())))
            warnings.warn(
                f"{found.height} known holes ({streams}) overlap {window.start:%Y-%m-%d %H:%M} "
                f"to {window.end:%Y-%m-%d %H:%M}: Farm.holes() lists them",
                HoleWarning,
                stacklevel=_callers_level(),
            )

    def _recent_holes(self, window: Window) -> pl.DataFrame:
        """Every stream's holes overlapping ``window``, asked once a minute per window (as
        the seam is): reading token after token of one window then costs one query, not one
        a token (a third of a token-day's candles from the database). A hole recorded since
        is warned of a minute later at most; ``holes()`` always asks."""
        now = time.monotonic()
        cached = self._window_holes.get(window)
        if cached is not None and now - cached[1] < SEAM_TTL_S:
            return cached[0]
        found = self._holes(None, window)
        if len(self._window_holes) >= RECENT_WINDOWS:
            self._window_holes.pop(next(iter(self._window_holes)))  # the oldest asked
        self._window_holes[window] = (found, now)
        return found

    def _database(self) -> StoredRows:
        if self._dsn is None:
            raise RuntimeError("this Farm has no database (a lake only)")
        if self._stored is None:
            self._stored = StoredRows(self._dsn)
        return self._stored

    def _query(self, sql: str, *parameters: object) -> pl.DataFrame:
        return _frame(self._database().query(sql, *parameters))


_frame = frame


def _callers_level() -> int:
    """The ``stacklevel`` of the first frame outside this module: a warning then names the
    line of the notebook or script that read, whichever of ``Farm``'s methods it called."""
    level, caller = 2, sys._getframe(2)  # the frame that called the caller of this function
    while caller.f_back is not None and caller.f_globals.get("__name__") == __name__:
        level, caller = level + 1, caller.f_back
    return level


def as_time(value: TimeLike) -> datetime:
    """A datetime (naive ones are UTC), a date (its UTC midnight) or an ISO string."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def as_of_time(value: TimeLike | None) -> datetime:
    return datetime.now(UTC) if value is None else as_time(value)


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def days_of(window: Window) -> Iterable[date]:
    day = window.start.astimezone(UTC).date()
    while midnight(day) < window.end:
        yield day
        day += timedelta(days=1)
