"""Protocol V2 end to end: a V2-heavy simulated venue, the real collectors and stream, a database.

Every open market, V1 and V2, gets price snapshots, books and WebSocket trades; the stored
trades equal the simulator's truth for V2 markets as for V1 ones; books known only from the
WebSocket verify against the venue's hash. In the same run, a client that takes ``clobTokenIds``
for a V2 market's trading ids is shown to get nothing, so the simulator cannot flatter the
client; and a market with an unknown ``version`` lands in quarantine with its payload.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from polyfarm.api.probe import hash_checks
from polyfarm.polymarket import ClobClient, MarketStream, TradePrint
from polyfarm.polymarket.parse import parse_gamma_market
from polyfarm.settings import WebSocketSettings
from polyfarm.sim import Simulator
from polyfarm.stream.bookcheck import HashOutcome
from polyfarm.stream.livebook import HashSource
from tests.polymarket.support import RecordingSleep, rest

from ..conftest import Server
from ..sim.support import make_config
from .harness import (
    TradeIdentity,
    advance,
    settle,
    stored_identities,
    stream_settings,
    streaming,
    truth_identity,
    truth_trades,
)


@pytest.fixture
def server(plain_server: Server) -> Server:
    return plain_server


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = make_config(
        markets=36, seed=23, v2_share=0.85, trade_rate=0.05, new_markets_per_hour=0.0,
        resolution_delay_s=(30.0, 90.0),
    )  # fmt: skip
    async with Simulator(config) as simulator:
        yield simulator


def naive_ids(raw: dict[str, object]) -> list[str]:
    """What a client that ignores ``version`` subscribes: the ``clobTokenIds``."""
    text = raw.get("clobTokenIds")
    return list(orjson.loads(text)) if isinstance(text, str) else []


async def naive_client_gets(sim: Simulator, tokens: list[str]) -> Counter[str]:
    """What polyfarm's own clients get for these ids: books (REST) and messages (WebSocket)
    while two simulated minutes pass."""
    got: Counter[str] = Counter()
    async with ClobClient(rest(sim.clob_url, "clob", RecordingSleep())) as clob:
        got["books"] = len((await clob.get_books(tokens)).items)
    settings = WebSocketSettings(ping_interval_s=0.5)
    async with MarketStream(sim.ws_url, tokens, settings=settings) as stream:
        await advance(sim, 120, 12, pause_s=0.02)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                async for message in stream:
                    got["messages"] += 1
                    got["trades"] += isinstance(message, TradePrint)
    return got


def gauge(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"no {name} {labels} in the metrics")


@pytest.mark.timeout(180)
async def test_v2_markets_are_recorded_exactly_like_v1_markets(
    sim: Simulator, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    odd = next(m for m in sim.world.markets if m.is_open and m.protocol == "v2")
    odd.protocol = "v3"  # the venue lists a market under a version nobody knows yet
    settings = stream_settings(sim, tmp_path)
    async with streaming(sim, pool, settings) as s:
        began = sim.clock.now_ms()
        initial_books = len(s.run.books)
        await s.cycle("prices")
        await advance(sim, 20 * 60, 240, pause_s=0.05)
        await settle(sim, s.run)
        await s.cycle("metadata")  # closes what closed meanwhile
        await s.cycle("prices")
        settled = sim.clock.now_ms() // 1000
        checks = Counter(s.run.checker.hash_checks)
        unseeded = [t for t, b in s.run.books.items() if not b.seeded]
        metrics = s.collection.metrics.render().decode()
    exported = hash_checks(metrics)
    undeclared = gauge(
        metrics, "polyfarm_markets_by_protocol", protocol="v1", version_field="absent"
    )

    markets = await pool.fetch(
        "SELECT market_id, protocol_version, raw FROM markets WHERE NOT closed AND raw IS NOT NULL"
    )
    versions = Counter(r["protocol_version"] for r in markets)
    assert versions["v2"] > 2 * versions["v1"] > 0, versions
    assert undeclared > 0, "markets without a version are counted (and read as v1)"

    # Every open market, V1 and V2: price snapshots, live-book snapshots, and its fills.
    open_tokens = await pool.fetch(
        "SELECT t.token_id, m.protocol_version FROM tokens t JOIN markets m USING (market_id) "
        "WHERE NOT m.closed"
    )
    priced = {
        r["token_id"] for r in await pool.fetch("SELECT DISTINCT token_id FROM price_snapshots")
    }
    booked = {
        r["token_id"]
        for r in await pool.fetch(
            "SELECT DISTINCT token_id FROM orderbook_snapshots WHERE source = 'ws'"
        )
    }
    for row in open_tokens:
        assert row["token_id"] in priced, f"{row['protocol_version']} token without prices"
        assert row["token_id"] in booked, f"{row['protocol_version']} token without books"

    truth = [t for t in await truth_trades(sim) if t["timestamp_ms"] > began]
    protocol_of = {r["token_id"]: r["protocol_version"] for r in open_tokens}
    stored = await stored_identities(pool)
    ws_tokens = {r["token_id"] for r in await pool.fetch(
        "SELECT DISTINCT token_id FROM trades WHERE source = 'ws'")}  # fmt: skip
    for scheme in ("v1", "v2"):
        expected: Counter[TradeIdentity] = Counter(
            truth_identity(t)
            for t in truth
            if sim.world.tokens[t["token_id"]][0].protocol == scheme
            and t["timestamp_ms"] // 1000 <= settled
        )
        assert expected, f"no {scheme} market traded"
        tokens = {identity[0] for identity in expected}
        assert Counter({k: n for k, n in stored.items() if k[0] in tokens}) == expected
        live = {t for t in tokens if protocol_of.get(t) == scheme}
        assert live <= ws_tokens, f"{scheme} fills not heard on the WebSocket"

    # Books known only from the WebSocket (none was ever replaced from REST) verify: without
    # the seeds from Gamma every check would be "unverifiable".
    assert initial_books > 50
    assert checks[HashSource.WS_BOOK, HashOutcome.VERIFIED] > 0
    assert checks[HashSource.WS_PRICE_CHANGE, HashOutcome.VERIFIED] > 100
    assert not {k: n for k, n in checks.items() if k[1] is not HashOutcome.VERIFIED}, checks
    assert not {k: n for k, n in checks.items() if k[0] is HashSource.REST}, checks
    assert unseeded == [], "every live book has its hash inputs"
    assert exported[("ws_book", "verified")] == checks[HashSource.WS_BOOK, HashOutcome.VERIFIED]

    # The quarantined market, with its raw payload and the reason.
    refused = await pool.fetch(
        "SELECT reason, record_key, raw FROM quarantine WHERE source = 'gamma_market'"
    )
    assert [r["record_key"] for r in refused] == [str(odd.gamma_id)] * len(refused)
    assert refused
    assert "unknown protocol version 'v3'" in refused[0]["reason"]
    assert orjson.loads(refused[0]["raw"])["version"] == "v3"
    assert not await pool.fetchval(
        "SELECT count(*) FROM markets WHERE market_id = $1", str(odd.gamma_id)
    )

    # A client taking clobTokenIds for the V2 markets' trading ids: no book, no message, while
    # the right ids of the same markets get both.
    v2_raws = [r["raw"] for r in markets if r["protocol_version"] == "v2"]  # jsonb, decoded
    naive = [t for raw in v2_raws for t in naive_ids(raw)]
    right = [t for raw in v2_raws for t in parse_gamma_market(orjson.dumps(raw)).token_ids]
    assert naive
    assert not set(naive) & set(right)
    before = sim.clock.now_ms()
    assert await naive_client_gets(sim, naive) == Counter(), "the naive client got data"
    got = await naive_client_gets(sim, right)
    assert got["books"] == len(right)
    assert got["trades"] > 0
    traded = [t for t in await truth_trades(sim) if t["timestamp_ms"] > before]
    assert any(t["token_id"] in set(right) for t in traded), "the V2 markets traded meanwhile"
