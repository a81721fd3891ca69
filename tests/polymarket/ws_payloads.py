"""Hand-made market-channel messages (a book, a trade) for the WebSocket tests to vary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

COND = "0x" + "cd" * 32
TOK_A = "3" * 70
TOK_B = "4" * 70
AT = datetime(2026, 5, 1, tzinfo=UTC)


def ws_book(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_type": "book",
        "asset_id": TOK_A,
        "market": COND,
        "bids": [{"price": "0.4", "size": "1"}],
        "asks": [{"price": "0.6", "size": "1"}],
        "timestamp": "1757908892351",
        "hash": "abc",
    }
    base.update(overrides)
    return base


def trade(**overrides: Any) -> dict[str, Any]:
    base = {
        "event_type": "last_trade_price",
        "asset_id": TOK_A,
        "market": COND,
        "price": "0.5",
        "size": "3",
        "side": "BUY",
        "timestamp": "1757908892351",
    }
    base.update(overrides)
    return base
