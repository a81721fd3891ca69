"""Conformance: every example payload in the reference vs the simulator's real answers.

The examples are extracted at test time from ``../shared/polymarket-api.md`` (```json blocks and
inline JSON in backticks). Each one is classified to the simulator request that produces the
same kind of payload; the simulator's answer must have every key of the example with the same
JSON type, and extra keys only where the reference lists them (its field tables, or optional
fields named next to the example). Examples the simulator deliberately does not produce are
listed with a reason; an example that matches no rule fails the test, so a new example in the
reference cannot be silently ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from polyfarm.sim import Simulator
from polyfarm.sim.model import Outcome

from .support import Feed, advance, reference_text, running, section, table_fields

Json = Any


# -- extracting the examples ------------------------------------------------------------------


def reference_examples() -> list[tuple[str, Json]]:
    """(source snippet, parsed JSON) for every parseable example in the reference."""
    text = reference_text()
    found: list[tuple[str, Json]] = []
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        found.append((block[:60], json.loads(block)))
    for inline in re.findall(r"`([\[{][^`]*[\]}])`", text):
        try:
            found.append((inline[:60], json.loads(inline)))
        except json.JSONDecodeError:
            continue  # schematic notation such as {"price":str,"size":str}
    return found


def allowed_extras() -> dict[str, set[str]]:
    """Keys the reference lists beyond its examples, per payload kind."""
    text = reference_text()
    market = table_fields(section(text, "### 1.4 Market object", "### 1.5 Event object"))
    event = table_fields(
        section(text, "### 1.5 Event object", "Example [REC nautilus `gamma_event.json`")
    )
    book = table_fields(section(text, "### 2.2 OrderBook object", "**Hash algorithm**"))
    tag_row = section(text, "| `tags` | array of `{", "| `markets` |")
    tags = set(re.findall(r'"([A-Za-z]+)":', tag_row))
    return {
        "market": market,
        "event": event | {"markets", "tags", "series", "seriesSlug"},
        "tag": tags,
        "book": book,
        # §3.3: book "+ optionally tick_size, min_order_size, neg_risk, last_trade_price"
        "ws_book": {"tick_size", "min_order_size", "neg_risk", "last_trade_price"},
        # §3.3: "Docs examples add transaction_hash"
        "last_trade_price": {"transaction_hash"},
        "data_v1": {"icon", "bio", "profileImage", "profileImageOptimized"},
        # §2.1: "/prices-history errors add code and retry_after_seconds fields"
        "history_error": {"code", "retry_after_seconds"},
    }


# -- comparing shapes -------------------------------------------------------------------------


def json_type(value: Json) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names[type(value)]


@dataclass
class Shape:
    extras: dict[str, set[str]]
    kinds: dict[str, str]  # key name → extras kind for nested objects

    def compare(self, ref: Json, got: Json, path: str, kind: str) -> list[str]:
        if json_type(ref) != json_type(got):
            return [
                f"{path}: reference {json_type(ref)} vs simulator {json_type(got)} ({got!r:.80})"
            ]
        if isinstance(ref, dict):
            return self._objects(ref, got, path, kind)
        if isinstance(ref, list) and ref and got:
            return [e for item in got[:5] for e in self.compare(ref[0], item, f"{path}[]", kind)]
        return []

    def _objects(
        self, ref: dict[str, Json], got: dict[str, Json], path: str, kind: str
    ) -> list[str]:
        errors: list[str] = []
        for key, value in ref.items():
            if key.startswith("<"):
                errors += [e for k in got for e in self.compare(value, got[k], f"{path}.{k}", kind)]
            elif key not in got:
                errors.append(f"{path}: missing key {key!r}")
            else:
                errors += self.compare(value, got[key], f"{path}.{key}", self.kinds.get(key, kind))
        if not any(k.startswith("<") for k in ref):
            extra = set(got) - set(ref) - self.extras.get(kind, set())
            errors += [f"{path}: unlisted extra key {k!r}" for k in sorted(extra)]
        return errors


# -- collecting the simulator's payloads -------------------------------------------------------


@dataclass
class Corpus:
    sim: Simulator
    http: aiohttp.ClientSession
    ws: dict[str, Json]

    async def get(self, base: str, path: str, **params: Any) -> tuple[int, Json]:
        async with self.http.get(f"{base}{path}", params=params) as response:
            return response.status, await response.json(content_type=None)

    async def post(self, base: str, path: str, body: Json) -> tuple[int, Json]:
        async with self.http.post(f"{base}{path}", json=body) as response:
            return response.status, await response.json(content_type=None)

    async def gamma(self, path: str, **params: Any) -> tuple[int, Json]:
        return await self.get(self.sim.gamma_url, path, **params)

    async def clob(self, path: str, **params: Any) -> tuple[int, Json]:
        return await self.get(self.sim.clob_url, path, **params)

    async def data(self, path: str, **params: Any) -> tuple[int, Json]:
        return await self.get(self.sim.data_url, path, **params)

    def token(self) -> str:
        return next(m.yes_token for m in self.sim.world.markets if m.is_open)

    def item(self) -> dict[str, str]:
        return {"token_id": self.token()}

    def market_where(self, predicate: Callable[[Any], bool]) -> Any:
        return next(m for m in self.sim.world.markets if predicate(m))


WS_KINDS = {
    "book", "price_change", "last_trade_price", "tick_size_change", "best_bid_ask", "new_market",
    "market_resolved",
}  # fmt: skip


@pytest.fixture(scope="module")
async def corpus() -> AsyncIterator[Corpus]:
    async with (
        running(markets=200, seed=21, max_events_per_step=800) as sim,
        aiohttp.ClientSession() as http,
        http.ws_connect(sim.ws_url) as ws,
    ):
        reader = Feed(ws)
        await reader.subscribe(list(sim.world.tokens), custom=True)
        await reader.read()
        for _ in range(40):  # until every payload kind the examples need has been seen
            await advance(sim, 1800)
            await reader.read(quiet=0.15)
            samples = {e["event_type"]: e for e in reader.events if "event_type" in e}
            if set(samples) >= WS_KINDS and any(_is_resolved_grouped(m) for m in sim.world.markets):
                break
        yield Corpus(sim, http, samples)


def _series_market(c: Corpus) -> Any:
    return c.market_where(lambda m: m.is_open and m.event.series is not None)


def _is_resolved_grouped(market: Any) -> bool:
    return market.result in (Outcome.YES, Outcome.NO) and bool(market.group_title)


def _resolved_grouped(c: Corpus) -> Any:
    return c.market_where(_is_resolved_grouped)


Fetch = Callable[[Corpus], Awaitable[tuple[int, Json]]]


TOO_LONG = "invalid filters: 'startTs' and 'endTs' interval is too long"


def _error_for(message: str) -> Fetch:
    """A request that makes the simulator answer with ``message``."""
    requests: dict[str, Fetch] = {
        "No orderbook exists for the requested token id": lambda c: c.clob("/book", token_id="0"),
        "Invalid token id": lambda c: c.clob("/book"),
        "Invalid payload": lambda c: c.post(c.sim.clob_url, "/books", {"not": "a list"}),
        "max historical trades offset of 10000 exceeded": lambda c: c.data("/trades", offset=10001),
        TOO_LONG: lambda c: c.clob("/prices-history", market=c.token(), startTs=0, endTs=2_000_000),
    }
    return requests[message]


async def _series_market_body(c: Corpus) -> tuple[int, Json]:
    return await c.gamma(f"/markets/{_series_market(c).gamma_id}")


async def _resolved_market_body(c: Corpus) -> tuple[int, Json]:
    return await c.gamma(f"/markets/{_resolved_grouped(c).gamma_id}")


async def _neg_risk_event_body(c: Corpus) -> tuple[int, Json]:
    market = c.market_where(lambda m: m.neg_risk and m.is_open)
    return await c.gamma(f"/events/{market.event.gamma_id}")


async def _clob_market_body(c: Corpus) -> tuple[int, Json]:
    return await c.clob(f"/markets/{c.market_where(lambda m: m.neg_risk).condition_id}")


async def _prices_body(c: Corpus) -> tuple[int, Json]:
    body = [{"token_id": c.token(), "side": side} for side in ("BUY", "SELL")]
    return await c.post(c.sim.clob_url, "/prices", body)


async def _history_body(c: Corpus) -> tuple[int, Json]:
    return await c.clob("/prices-history", market=c.token(), interval="1d", fidelity=60)


ERROR_TEXTS = {
    "No orderbook exists for the requested token id", "Invalid token id", "Invalid payload",
    "max historical trades offset of 10000 exceeded", "Too Many Requests",
    "invalid filters: 'startTs' and 'endTs' interval is too long",
}  # fmt: skip


def rules() -> list[tuple[Callable[[Json], bool], str, Fetch | str]]:
    """(predicate, extras kind, fetcher or skip reason); first match wins."""

    def keys(*names: str) -> Callable[[Json], bool]:
        return lambda v: isinstance(v, dict) and set(v) == set(names)

    def has(*names: str) -> Callable[[Json], bool]:
        return lambda v: isinstance(v, dict) and all(n in v for n in names)

    def event(kind: str) -> Callable[[Json], bool]:
        return lambda v: isinstance(v, dict) and v.get("event_type") == kind

    def error(message: str) -> Callable[[Json], bool]:
        return lambda v: isinstance(v, dict) and v.get("error") == message

    def list_of(key: str) -> Callable[[Json], bool]:
        return lambda v: isinstance(v, list) and bool(v) and isinstance(v[0], dict) and key in v[0]

    def strings(value: Json) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(x, str) for x in value)

    def gamma_market_example(closed: bool) -> Callable[[Json], bool]:
        return lambda v: has("conditionId", "question")(v) and bool(v.get("closed")) == closed

    def ws(kind: str) -> Fetch:
        async def fetch(c: Corpus) -> tuple[int, Json]:
            return 200, c.ws[kind]

        return fetch

    messages = sorted(ERROR_TEXTS - {"Too Many Requests"})
    table: list[tuple[Callable[[Json], bool], str, Fetch | str]] = [
        (gamma_market_example(closed=False), "market", _series_market_body),
        (gamma_market_example(closed=True), "market", _resolved_market_body),
        (has("ticker", "markets"), "event", _neg_risk_event_body),
        (has("$schema", "markets"), "market", lambda c: c.gamma("/markets/keyset", limit=3)),
        (has("enable_order_book", "tokens"), "clob_market", _clob_market_body),
        (event("book"), "ws_book", ws("book")),
        (lambda v: event("price_change")(v) and "price_changes" in v, "", ws("price_change")),
        (
            event("price_change"),
            "",
            "pre-2025-09-15 price_change schemas; the sim emits the current",
        ),
        (event("last_trade_price"), "last_trade_price", ws("last_trade_price")),
        (event("tick_size_change"), "", ws("tick_size_change")),
        (event("best_bid_ask"), "", ws("best_bid_ask")),
        (event("new_market"), "", ws("new_market")),
        (event("market_resolved"), "", ws("market_resolved")),
        (has("bids", "asks", "asset_id"), "book", lambda c: c.clob("/book", token_id=c.token())),
        (list_of("proxyWallet"), "data_v1", lambda c: c.data("/trades", limit=5)),
        (has("proxy_wallet", "token_id"), "", _v2_row),
        (keys("data"), "", lambda c: c.data("/")),
        (has("type", "error"), "", lambda c: c.gamma("/markets/keyset", order="bogus")),
        (keys("price"), "", lambda c: c.clob("/price", token_id=c.token(), side="BUY")),
        (keys("price", "side"), "", lambda c: c.clob("/last-trade-price", token_id=c.token())),
        (lambda v: has("<token_id>")(v) and isinstance(v["<token_id>"], dict), "", _prices_body),
        (keys("<token_id>"), "", lambda c: c.post(c.sim.clob_url, "/midpoints", [c.item()])),
        (keys("mid"), "", lambda c: c.clob("/midpoint", token_id=c.token())),
        (keys("spread"), "", lambda c: c.clob("/spread", token_id=c.token())),
        (keys("minimum_tick_size"), "", lambda c: c.clob("/tick-size", token_id=c.token())),
        (keys("neg_risk"), "", lambda c: c.clob("/neg-risk", token_id=c.token())),
        (keys("base_fee"), "", lambda c: c.clob("/fee-rate", token_id=c.token())),
        (keys("history"), "", _history_body),
        *[(error(m), "history_error" if "filters" in m else "", _error_for(m)) for m in messages],
        (has("error", "code", "retry_after_seconds"), "history_error", _error_for(TOO_LONG)),
        (error("Too Many Requests"), "", _rate_limited),
        (
            lambda v: isinstance(v, dict) and "error" in v,
            "",
            "placeholder error bodies (<message>)",
        ),
        (has("assets_ids", "operation"), "", "a client request frame, not a server payload"),
        (strings, "", _decoded_outcome_prices),
        (lambda v: v == [] or list_of("token_id")(v), "", "request bodies"),
        (has("exponent", "rate"), "", lambda c: _market_field(c, "feeSchedule")),
        (list_of("rewardsDailyRate"), "", lambda c: _market_field(c, "clobRewards")),
        (list_of("value"), "", "Data API /oi is not simulated"),
        (has("action", "subscriptions"), "", "RTDS is not simulated"),
        (has("blocked", "country"), "", "the geoblock endpoint lives on polymarket.com"),
    ]
    return table


async def _v2_row(c: Corpus) -> tuple[int, Json]:
    status, body = await c.data("/v2/trades", limit=1)
    return status, body["data"][0]


async def _rate_limited(c: Corpus) -> tuple[int, Json]:
    c.sim.faults.set("http_429=1")
    try:
        return await c.clob("/book", token_id=c.token())
    finally:
        c.sim.faults.clear()


async def _market_field(c: Corpus, key: str) -> tuple[int, Json]:
    status, body = await c.gamma(f"/markets/{_series_market(c).gamma_id}")
    return status, body[key]


async def _decoded_outcome_prices(c: Corpus) -> tuple[int, Json]:
    _, body = await c.gamma(f"/markets/{_resolved_grouped(c).gamma_id}")
    return 200, json.loads(body["outcomePrices"])


async def test_every_reference_example_matches_the_simulator(corpus: Corpus) -> None:
    examples = reference_examples()
    assert len(examples) > 40, "the reference should yield many examples"
    shape = Shape(allowed_extras(), {"events": "event", "markets": "market", "tags": "tag"})
    failures, checked, skipped = [], 0, []
    for snippet, example in examples:
        rule = next(((kind, action) for test, kind, action in rules() if test(example)), None)
        if rule is None:
            failures.append(f"unclassified reference example: {snippet!r}")
            continue
        kind, action = rule
        if isinstance(action, str):
            skipped.append(f"{snippet!r}: {action}")
            continue
        _, got = await action(corpus)
        wanted = example.get("error") if isinstance(example, dict) else None
        if wanted in ERROR_TEXTS and got.get("error") != wanted:
            failures.append(f"{snippet!r}: error text {got.get('error')!r}")
        failures += [f"{snippet!r} → {e}" for e in shape.compare(example, got, "$", kind)]
        checked += 1
    print(f"checked {checked} examples, skipped {len(skipped)}:", *skipped, sep="\n  ")
    assert not failures, "\n".join(failures)
    assert checked >= 35


async def test_gamma_string_encoded_fields(corpus: Corpus) -> None:
    status, body = await corpus.get(corpus.sim.gamma_url, "/markets/keyset", limit=20)
    assert status == 200
    for market in body["markets"]:
        for key in ("outcomes", "outcomePrices", "clobTokenIds", "umaResolutionStatuses"):
            assert isinstance(market[key], str)
            assert isinstance(json.loads(market[key]), list)
        assert market["id"].isdigit()
        assert isinstance(market["volumeNum"], float | int)
        assert all(isinstance(p, str) for p in json.loads(market["outcomePrices"]))
        assert market["events"][0]["slug"]
        assert "eventSlug" not in market
