"""Trade identity for both sources of fills: the WebSocket tape and the Data API (pure).

Polymarket publishes no fill id. ``polyfarm.store.rows.trade_key`` digests what both feeds
report (token, whole second, canonical price and size, taker side) plus an *occurrence*: the
number of otherwise identical fills seen earlier in the same second. Both sources number
occurrences the same way, so a fill seen live and again in a repair gets the same key:

* **live**: a fill whose exact identity (token, millisecond, price, size, side, transaction
  hash) was already seen is a repeated frame and is dropped; any other fill with the same
  second/price/size/side takes the next occurrence number;
* **repair**: a Data API window always covers whole seconds, so within it every second is
  complete and occurrences are numbered over all of its fills (after dropping rows the API
  returned twice, by ``DataTrade.dedupe_key``).

Edge cases: two real fills identical down to the millisecond *and* without a transaction hash
cannot be told from a repeated frame and are stored once; the key of two identical fills may
carry each other's transaction hash (their stored fields are otherwise equal).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

from polyfarm.polymarket.domain import DataTrade, Side, TradePrint
from polyfarm.store.rows import TradeRow, canonical_decimal, trade_key

Material = tuple[str, str, str]  # canonical price, canonical size, side
Identity = tuple[int, str | None]  # exchange milliseconds, transaction hash


def decimal_text(value: Decimal) -> str:
    """Canonical fixed-point text: ``1E+3`` → ``1000``, ``0.430`` → ``0.43``."""
    return canonical_decimal(format(value, "f"))


def second_of(moment: datetime) -> int:
    return int(moment.timestamp() // 1)


class LiveTradeKeys:
    """Occurrence numbering of live fills, per token and second, for the last ``horizon_s``."""

    def __init__(self, horizon_s: int = 600) -> None:
        self._horizon_s = horizon_s
        self._seconds: dict[tuple[str, int], dict[Material, list[Identity]]] = {}
        self._order: deque[tuple[int, tuple[str, int]]] = deque()
        self._newest = 0

    def __len__(self) -> int:
        return len(self._seconds)

    def key(
        self,
        token_id: str,
        exchange_ms: int,
        price: Decimal,
        size: Decimal,
        side: Side,
        transaction_hash: str | None,
    ) -> bytes | None:
        """The fill's key, or None when this exact fill was already keyed (a repeated frame)."""
        second = exchange_ms // 1000
        slot = (token_id, second)
        fills = self._seconds.get(slot)
        if fills is None:
            fills = self._seconds[slot] = {}
            self._order.append((second, slot))
            self._prune(second)
        material = (decimal_text(price), decimal_text(size), side)
        seen = fills.setdefault(material, [])
        identity = (exchange_ms, transaction_hash)
        if identity in seen:
            return None
        seen.append(identity)
        return trade_key(token_id, second, material[0], material[1], side, len(seen) - 1)

    def _prune(self, second: int) -> None:
        self._newest = max(self._newest, second)
        oldest = self._newest - self._horizon_s
        while self._order and self._order[0][0] < oldest:
            _, slot = self._order.popleft()
            self._seconds.pop(slot, None)


def live_trade_row(
    trade: TradePrint, side: Side, key: bytes, market_id: str, exchange_ms: int
) -> TradeRow:
    return TradeRow(
        ts=datetime.fromtimestamp(exchange_ms // 1000, UTC),
        token_id=trade.asset_id,
        market_id=market_id,
        trade_key=key,
        price=float(trade.price),
        size=float(trade.size),
        side=side,
        fee_rate_bps=None if trade.fee_rate_bps is None else float(trade.fee_rate_bps),
        transaction_hash=trade.transaction_hash,
        source="ws",
        exchange_ms=exchange_ms,
        received_at=trade.received_at,
    )


def repaired_trade_rows(
    trades: Iterable[DataTrade],
    market_ids: Mapping[str, str],
    received_at: datetime,
) -> list[TradeRow]:
    """Rows for the Data API fills of complete seconds, keyed like the live ones.

    ``market_ids`` maps the tokens to keep to their market id; other tokens are skipped.
    """
    seen: set[tuple[object, ...]] = set()
    occurrences: dict[tuple[str, int, Material], int] = {}
    rows = []
    for trade in trades:
        market_id = market_ids.get(trade.token_id)
        if market_id is None or trade.dedupe_key in seen:
            continue
        seen.add(trade.dedupe_key)
        second = second_of(trade.timestamp)
        material = (decimal_text(trade.price), decimal_text(trade.size), trade.side)
        slot = (trade.token_id, second, material)
        occurrence = occurrences.get(slot, 0)
        occurrences[slot] = occurrence + 1
        key = trade_key(trade.token_id, second, material[0], material[1], trade.side, occurrence)
        rows.append(_data_row(trade, market_id, key, second, received_at))
    return rows


def _data_row(
    trade: DataTrade, market_id: str, key: bytes, second: int, received_at: datetime
) -> TradeRow:
    return TradeRow(
        ts=datetime.fromtimestamp(second, UTC),
        token_id=trade.token_id,
        market_id=market_id,
        trade_key=key,
        price=float(trade.price),
        size=float(trade.size),
        side=trade.side,
        fee_rate_bps=None,
        transaction_hash=trade.transaction_hash,
        source="data_api",
        exchange_ms=None,
        received_at=received_at,
    )
