"""Primitive, pure converters shared by the parsers: ids, decimals, timestamps, wire coercion.

Each strict converter raises ``PayloadError`` with a reason; the loose ones (for auxiliary
snapshot values such as Gamma's ``volume24hr``) return ``None`` instead, because a garbled
statistic must not cost us the market.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ParamSpec, TypeVar

import msgspec

from polyfarm.errors import PayloadError
from polyfarm.polymarket.domain import Reject, Side

W = TypeVar("W")
T = TypeVar("T")
P = ParamSpec("P")

_CONDITION_ID = re.compile(r"0x[0-9a-fA-F]{64}")
_TOKEN_ID = re.compile(r"[0-9]{1,100}")
_NUMERIC_ID = re.compile(r"[0-9]{1,20}")
_DIGITS = re.compile(r"[0-9]{1,20}")
# Epoch values at or above this are milliseconds: 1e11 seconds is the year 5138.
_MS_THRESHOLD = 100_000_000_000
_ZERO = Decimal(0)
_ONE = Decimal(1)


def payload_errors(func: Callable[P, T]) -> Callable[P, T]:
    """Turn any data-driven failure inside a parser into ``PayloadError``.

    Parsers see arbitrary bytes from the network; the contract with callers is that a bad record
    raises ``PayloadError`` and nothing else, so a collector can count and quarantine it.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except PayloadError:
            raise
        except (ValueError, ArithmeticError, TypeError, KeyError, IndexError) as exc:
            raw = args[0] if args else b""
            raise PayloadError(f"{type(exc).__name__}: {exc}", raw=raw_bytes(raw)) from exc

    return wrapper


def raw_bytes(obj: object) -> bytes:
    """Best-effort raw form of an input, kept on rejects for quarantine and logs."""
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, str):
        return obj.encode("utf-8", "replace")
    if isinstance(obj, bytearray | memoryview | msgspec.Raw):
        return bytes(obj)
    try:
        return msgspec.json.encode(obj)
    except (TypeError, ValueError, OverflowError):
        return repr(obj).encode("utf-8", "replace")


def to_wire(obj: object, decoder: msgspec.json.Decoder[W], kind: type[W]) -> W:
    """Accept a decoded wire struct, raw JSON (bytes/str/Raw) or plain Python data."""
    if isinstance(obj, kind):
        return obj
    try:
        if isinstance(obj, bytes | bytearray | memoryview | str | msgspec.Raw):
            return decoder.decode(obj)
        return decoder.decode(msgspec.json.encode(obj))
    except (msgspec.DecodeError, TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(f"{kind.__name__}: {exc}", raw=raw_bytes(obj)) from exc


def parse_records(
    records: Iterable[object], parser: Callable[[Any], T]
) -> tuple[list[T], list[Reject]]:
    """Parse each record independently: one bad record never blocks the others."""
    good: list[T] = []
    rejects: list[Reject] = []
    for record in records:
        try:
            good.append(parser(record))
        except PayloadError as exc:
            rejects.append(Reject(reason=str(exc), raw=raw_bytes(record), key=record_key(record)))
    return good, rejects


def parse_records_batch(
    records: Sequence[msgspec.Raw],
    batch: msgspec.json.Decoder[list[W]],
    parser: Callable[[Any], T],
) -> tuple[list[T], list[Reject]]:
    """``parse_records`` with one decode for the whole list: a page of price history is up to
    10,000 records, and decoding them one by one was most of a backfill's parsing. Should any
    record fail, the list is parsed record by record as before, so that the good ones are kept
    and each reject carries its own bytes."""
    try:
        wires = batch.decode(b"[" + b",".join(records) + b"]")
    except (msgspec.DecodeError, ValueError):
        return parse_records(records, parser)
    good, rejects = parse_records(wires, parser)
    return (good, rejects) if not rejects else parse_records(records, parser)


class _KeyProbe(msgspec.Struct):
    id: str | int | None = None
    asset_id: str | None = None
    conditionId: str | None = None  # wire name
    condition_id: str | None = None


_KEY_PROBE = msgspec.json.Decoder(_KeyProbe)


def record_key(record: object) -> str | None:
    """The most useful identifier of a rejected record, if one can be read at all."""
    try:
        probe = _KEY_PROBE.decode(raw_bytes(record))
    except msgspec.DecodeError:
        return None
    for value in (probe.id, probe.asset_id, probe.conditionId, probe.condition_id):
        if value is not None:
            return str(value)
    return None


# --- ids -----------------------------------------------------------------------------------


def condition_id(value: object, what: str = "market") -> str:
    if not isinstance(value, str) or not _CONDITION_ID.fullmatch(value):
        raise PayloadError(f"{what}: not a condition id (0x + 64 hex): {value!r:.80}")
    return value.lower()


def token_id(value: object, what: str = "asset_id") -> str:
    # Token ids exceed 2**64: they must arrive as decimal strings, never JSON numbers.
    if not isinstance(value, str) or not _TOKEN_ID.fullmatch(value):
        raise PayloadError(f"{what}: not a decimal token id string: {value!r:.100}")
    return value


def numeric_id(value: object, what: str = "id") -> str:
    if isinstance(value, bool):
        raise PayloadError(f"{what}: not a numeric id: {value!r}")
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str) or not _NUMERIC_ID.fullmatch(text):
        raise PayloadError(f"{what}: not a numeric id: {value!r:.40}")
    return text


def optional_text(value: str | None) -> str | None:
    """Polymarket writes ``""`` for unset strings (``negRiskMarketID``); treat it as absent."""
    return value or None


# --- decimals ------------------------------------------------------------------------------


def price(value: Decimal, what: str = "price") -> Decimal:
    if not value.is_finite() or not _ZERO <= value <= _ONE:
        raise PayloadError(f"{what}: price outside [0, 1]: {value}")
    return value


def size(value: Decimal, what: str = "size") -> Decimal:
    if not value.is_finite() or value < _ZERO:
        raise PayloadError(f"{what}: size must be a finite non-negative number: {value}")
    return value


def decimal_text(value: object, what: str) -> Decimal:
    """Strict decimal from a string or JSON number (accepts ``".48"`` and ``"0.430"``)."""
    if type(value) is str:  # the common case, first: Decimal() itself ignores outer blanks
        try:
            result = Decimal(value)
        except InvalidOperation as exc:
            raise PayloadError(f"{what}: not a decimal: {value!r:.40}") from exc
        if not result.is_finite():
            raise PayloadError(f"{what}: not finite: {value!r:.40}")
        return result
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise PayloadError(f"{what}: not a decimal: {value!r:.40}")
    try:
        result = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise PayloadError(f"{what}: not a decimal: {value!r:.40}") from exc
    if not result.is_finite():
        raise PayloadError(f"{what}: not finite: {value!r:.40}")
    return result


def optional_price_text(value: str | None, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    return price(decimal_text(value, what), what)


def optional_price(value: Decimal | None, what: str) -> Decimal | None:
    return None if value is None else price(value, what)


def optional_size(value: Decimal | None, what: str) -> Decimal | None:
    return None if value is None else size(value, what)


def loose_decimal(value: str | float | Decimal | None) -> Decimal | None:
    """Auxiliary statistics: anything unreadable or non-finite becomes ``None``."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def side(value: object, what: str = "side") -> Side:
    text = value.upper() if isinstance(value, str) else value
    if text == "BUY":
        return "BUY"
    if text == "SELL":
        return "SELL"
    raise PayloadError(f"{what}: not BUY/SELL: {value!r:.20}")


def optional_side(value: str | None, what: str = "side") -> Side | None:
    return None if value is None or value == "" else side(value, what)


# --- timestamps ----------------------------------------------------------------------------


def epoch(value: object, what: str = "timestamp") -> datetime:
    """Epoch seconds or milliseconds (as int or digit string), told apart by magnitude.

    The reference fixes the unit per source (CLOB/WS: ms strings; Data API and price history:
    seconds); deciding by magnitude accepts both without guessing wrong for any real date.
    """
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise PayloadError(f"{what}: not an epoch timestamp: {value!r:.40}")
    if number <= 0:
        raise PayloadError(f"{what}: not a positive epoch timestamp: {number}")
    seconds = number / 1000 if number >= _MS_THRESHOLD else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError(f"{what}: epoch out of range: {number}") from exc


def gamma_time(value: str | None, what: str) -> datetime | None:
    """Gamma's formats: ISO with 0-9 fraction digits, ``2026-03-19 23:20:15+00``, bare dates."""
    if value is None or value.strip() == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise PayloadError(f"{what}: unreadable timestamp {value!r:.40}") from exc
    # Bare dates and zone-less times are UTC on Polymarket.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# --- stringified JSON ----------------------------------------------------------------------


def stringified_list(value: str | list[Any] | None, what: str) -> list[Any]:
    """Decode a Gamma JSON-in-a-string array exactly once (a real array passes through)."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    try:
        decoded = msgspec.json.decode(value)
    except msgspec.DecodeError as exc:
        raise PayloadError(f"{what}: not a JSON-encoded array: {value!r:.60}") from exc
    if not isinstance(decoded, list):
        raise PayloadError(f"{what}: JSON-encoded value is not an array: {value!r:.60}")
    return decoded


def string_items(items: list[Any], what: str) -> list[str]:
    if not all(isinstance(item, str) for item in items):
        raise PayloadError(f"{what}: array items must be strings")
    return items


def next_cursor(value: str | None) -> str | None:
    """Absent, ``null`` and ``""`` all mean "last page"."""
    return value or None
