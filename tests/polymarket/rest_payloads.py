"""Hand-made REST payloads (a Gamma market, a CLOB book) for the parser tests to vary."""

from __future__ import annotations

from typing import Any

import orjson

COND = "0x" + "ab" * 32
TOK_A = "1" * 77
TOK_B = "2" * 76


def market(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "42",
        "conditionId": COND,
        "question": "Q?",
        "outcomes": '["Yes", "No"]',
        "outcomePrices": '["0.6", "0.4"]',
        "clobTokenIds": orjson.dumps([TOK_A, TOK_B]).decode(),
        "closed": False,
    }
    base.update(overrides)
    return base


def book(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "market": COND,
        "asset_id": TOK_A,
        "timestamp": "1728799418260",
        "bids": [{"price": ".48", "size": "10"}, {"price": "0.5", "size": "1"}],
        "asks": [{"price": "0.430", "size": "5"}, {"price": "0.6", "size": "2"}],
    }
    base.update(overrides)
    return base
