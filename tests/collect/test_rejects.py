from __future__ import annotations

import asyncpg
import msgspec

from polyfarm.collect.rejects import RejectSink
from polyfarm.metrics import Metrics
from polyfarm.polymarket.parse import parse_gamma_markets

from ..conftest import Server
from ..store.factories import T0


async def test_refused_markets_are_logged_counted_and_quarantined(
    server: Server, pool: asyncpg.Pool
) -> None:
    good = b'{"id":"12","conditionId":"0x' + b"a" * 64 + b'","question":"Fine?"}'
    bad = [
        b'{"id":"13","question":"no condition id"}',
        b'{"id":"14","conditionId":"0xnothex","question":"bad id"}',
        b'{"id":"15","conditionId":"0x' + b"b" * 64 + b'","outcomes":"[\\"Yes\\"",'
        b'"question":"broken stringified json"}',
    ]
    markets, rejects = parse_gamma_markets([msgspec.Raw(good), *(msgspec.Raw(b) for b in bad)])
    assert [m.market_id for m in markets] == ["12"]
    metrics = Metrics()
    sink = RejectSink(pool, metrics, clock=lambda: T0)
    assert await sink.add("gamma_market", rejects) == 3
    rows = await pool.fetch("SELECT * FROM quarantine ORDER BY id")
    assert [r["raw"] for r in rows] == bad
    assert [r["record_key"] for r in rows] == ["13", "14", "15"]
    assert all(r["reason"] and r["source"] == "gamma_market" for r in rows)
    assert all(r["received_at"] == T0 for r in rows)
    assert b'polyfarm_parse_errors_total{source="gamma_market"} 3.0' in metrics.render()
