"""Trade keys: the live tape and the Data API agree on every fill's identity (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from polyfarm.polymarket.domain import DataTrade
from polyfarm.store.rows import trade_key
from polyfarm.stream.trades import LiveTradeKeys, decimal_text, repaired_trade_rows

TOKEN = "111"
OTHER = "222"
CONDITION = "0x" + "cd" * 32
T = datetime(2026, 3, 1, 12, 0, 7, tzinfo=UTC)
MS = int(T.timestamp()) * 1000


def data_trade(
    ms_offset: int = 0, price: str = "0.5", size: str = "10", tx: str = "0xa", token: str = TOKEN
) -> DataTrade:
    return DataTrade(
        condition_id=CONDITION,
        token_id=token,
        side="BUY",
        price=Decimal(price),
        size=Decimal(size),
        timestamp=T + timedelta(milliseconds=ms_offset) - timedelta(microseconds=0),
        proxy_wallet="0xw",
        transaction_hash=tx,
    )


def test_decimal_text_has_no_exponent() -> None:
    assert decimal_text(Decimal("1E+3")) == "1000"
    assert decimal_text(Decimal("0.430")) == "0.43"
    assert decimal_text(Decimal(".5")) == "0.5"


def test_a_repeated_frame_is_dropped_and_identical_fills_are_numbered() -> None:
    keys = LiveTradeKeys()
    first = keys.key(TOKEN, MS + 10, Decimal("0.5"), Decimal("10"), "BUY", "0xa")
    again = keys.key(TOKEN, MS + 10, Decimal("0.5"), Decimal("10"), "BUY", "0xa")
    twin = keys.key(TOKEN, MS + 900, Decimal("0.50"), Decimal("10.0"), "BUY", "0xb")
    other = keys.key(TOKEN, MS + 900, Decimal("0.5"), Decimal("10"), "SELL", "0xb")
    assert again is None
    assert first == trade_key(TOKEN, MS // 1000, "0.5", "10", "BUY", 0)
    assert twin == trade_key(TOKEN, MS // 1000, "0.5", "10", "BUY", 1)
    assert other == trade_key(TOKEN, MS // 1000, "0.5", "10", "SELL", 0)
    assert len({first, twin, other}) == 3


def test_without_a_transaction_hash_only_the_millisecond_tells_fills_apart() -> None:
    keys = LiveTradeKeys()
    assert keys.key(TOKEN, MS + 1, Decimal("0.5"), Decimal("1"), "BUY", None) is not None
    assert keys.key(TOKEN, MS + 1, Decimal("0.5"), Decimal("1"), "BUY", None) is None
    assert keys.key(TOKEN, MS + 2, Decimal("0.5"), Decimal("1"), "BUY", None) is not None


def test_old_seconds_are_forgotten_after_the_horizon() -> None:
    keys = LiveTradeKeys(horizon_s=10)
    keys.key(TOKEN, MS, Decimal("0.5"), Decimal("1"), "BUY", "0xa")
    keys.key(TOKEN, MS + 60_000, Decimal("0.5"), Decimal("1"), "BUY", "0xb")
    assert len(keys) == 1


def test_repair_keys_equal_live_keys_for_the_same_fills() -> None:
    live = LiveTradeKeys()
    seen_live = {
        live.key(TOKEN, MS + 100, Decimal("0.5"), Decimal("10"), "BUY", "0xa"),
        live.key(TOKEN, MS + 400, Decimal("0.5"), Decimal("10"), "BUY", "0xb"),
    }
    # The Data API lists newest first, in whole seconds, and repeats a row across pages.
    tape = [data_trade(tx="0xb"), data_trade(tx="0xa"), data_trade(tx="0xa"), data_trade(tx="0xc")]
    rows = repaired_trade_rows(tape, {TOKEN: "m1"}, T)
    assert len(rows) == 3
    assert {r.trade_key for r in rows} > seen_live  # the third identical fill is the new one
    assert all(r.ts == T and r.source == "data_api" and r.market_id == "m1" for r in rows)


def test_repair_skips_tokens_it_was_not_asked_for() -> None:
    rows = repaired_trade_rows([data_trade(token=OTHER)], {TOKEN: "m1"}, T)
    assert rows == []
