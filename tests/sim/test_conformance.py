"""Conformance: every payload under ``tests/wire_examples`` vs the simulator's real answers.

Each example is matched to the simulator request that produces the same kind of payload; the
simulator's answer must have every key of the example with the same JSON type, and extra keys
only where they are documented (``fields.json``, or optional fields named with the payload
kind). Examples the simulator deliberately does not produce are listed with a reason; an
example no rule covers fails the test, so a new example cannot be silently ignored.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from polyfarm.sim import Simulator
from polyfarm.sim.model import MarketState, Outcome
from tests.wire_examples import WireExample, documented_fields, examples

from .support import Feed, advance, running

Json = Any


def allowed_extras() -> dict[str, set[str]]:
    """Keys a simulator answer may carry beyond its example's, per payload kind."""
    fields = documented_fields()
    return {
        "market": set(fields["gamma_market"]),
        "event": set(fields["gamma_event"]) | {"markets", "tags", "series", "seriesSlug"},
        "tag": set(fields["gamma_tag"]),
        "book": set(fields["clob_book"]),
        # A WebSocket book may carry these; 2026 captures have the first and the last.
        "ws_book": {"tick_size", "min_order_size", "neg_risk", "last_trade_price"},
        # Documented beside the recorded trade message.
        "last_trade_price": {"transaction_hash"},
        # new_market fields seen in 2026 beside the 2025 recording.
        "new_market": {"fees_enabled", "taker_base_fee", "fee_schedule"},
        "data_v1": {"icon", "bio", "profileImage", "profileImageOptimized"},
        # Price-history errors add these.
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

    def market_where(self, predicate: Callable[[MarketState], bool]) -> MarketState:
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
        for _ in range(60):  # until every payload kind and market the examples need exist
            await advance(sim, 1800)
            await reader.read(quiet=0.15)
            samples = {e["event_type"]: e for e in reader.events if "event_type" in e}
            if set(samples) >= WS_KINDS and all(
                any(wanted(m) for m in sim.world.markets) for wanted in MARKETS_NEEDED
            ):
                break
        yield Corpus(sim, http, samples)


def _is_resolved_grouped(market: MarketState) -> bool:
    return (
        market.result in (Outcome.YES, Outcome.NO)
        and bool(market.group_title)
        and market.protocol == "v1"
    )


def _open_v1(market: MarketState) -> bool:
    return market.is_open and market.protocol == "v1" and not market.position_ids


def _series(protocol: str, ctf: bool, legs: bool) -> Callable[[MarketState], bool]:
    """A recurring-series market (like the recorded up/down market) publishing these ids."""
    return lambda m: (
        m.event.series is not None
        and m.protocol == protocol
        and (m.ctf_ids is not None) == ctf
        and (m.position_ids is not None) == legs
    )


Fetch = Callable[[Corpus], Awaitable[tuple[int, Json]]]
Rule = tuple[str, Fetch | str]  # (extras kind, fetcher or the reason it is not compared)


async def _gamma_market(c: Corpus, predicate: Callable[[MarketState], bool]) -> tuple[int, Json]:
    return await c.gamma(f"/markets/{c.market_where(predicate).gamma_id}")


GAMMA_MARKETS: dict[str, Callable[[MarketState], bool]] = {
    "open_updown_2026-03": _series("v1", ctf=True, legs=False),
    "resolved_binary_2026-03": _is_resolved_grouped,
    "v1_with_position_ids_composite": _series("v1", ctf=True, legs=True),
    "v2_position_ids_composite": _series("v2", ctf=True, legs=True),
    "v2_without_clob_token_ids_composite": _series("v2", ctf=False, legs=True),
}


def _gamma_market_rule(ex: WireExample) -> Rule:
    predicate = GAMMA_MARKETS[ex.name]
    return "market", lambda c: _gamma_market(c, predicate)


def _neg_risk_v1(market: MarketState) -> bool:
    return market.neg_risk and _open_v1(market)


def _neg_risk_with_fees(market: MarketState) -> bool:
    return market.neg_risk and market.fee_type is not None


async def _neg_risk_event_body(c: Corpus) -> tuple[int, Json]:
    market = c.market_where(_neg_risk_v1)
    return await c.gamma(f"/events/{market.event.gamma_id}")


async def _market_field(c: Corpus, key: str) -> tuple[int, Json]:
    status, body = await _gamma_market(c, GAMMA_MARKETS["open_updown_2026-03"])
    return status, body[key]


async def _decoded_outcome_prices(c: Corpus) -> tuple[int, Json]:
    _, body = await _gamma_market(c, _is_resolved_grouped)
    return 200, json.loads(body["outcomePrices"])


async def _clob_market_body(c: Corpus) -> tuple[int, Json]:
    return await c.clob(f"/markets/{c.market_where(lambda m: m.neg_risk).condition_id}")


async def _clob_market_info_body(c: Corpus) -> tuple[int, Json]:
    market = c.market_where(_neg_risk_with_fees)
    return await c.clob(f"/clob-markets/{market.condition_id}")


async def _prices_body(c: Corpus) -> tuple[int, Json]:
    body = [{"token_id": c.token(), "side": side} for side in ("BUY", "SELL")]
    return await c.post(c.sim.clob_url, "/prices", body)


async def _v2_row(c: Corpus) -> tuple[int, Json]:
    status, body = await c.data("/v2/trades", limit=1)
    return status, body["data"][0]


async def _rate_limited(c: Corpus) -> tuple[int, Json]:
    c.sim.faults.set("http_429=1")
    try:
        return await c.clob("/book", token_id=c.token())
    finally:
        c.sim.faults.clear()


TOO_LONG = "invalid filters: 'startTs' and 'endTs' interval is too long"
ERRORS: dict[str, Fetch] = {
    "No orderbook exists for the requested token id": lambda c: c.clob("/book", token_id="0"),
    "Invalid token id": lambda c: c.clob("/book"),
    "Invalid payload": lambda c: c.post(c.sim.clob_url, "/books", {"not": "a list"}),
    "max historical trades offset of 10000 exceeded": lambda c: c.data("/trades", offset=10001),
    TOO_LONG: lambda c: c.clob("/prices-history", market=c.token(), startTs=0, endTs=2_000_000),
    "Too Many Requests": _rate_limited,
}


MARKETS_NEEDED = [*GAMMA_MARKETS.values(), _neg_risk_v1, _neg_risk_with_fees]


def _error_rule(ex: WireExample) -> Rule:
    message = ex.value["error"]
    if "type" in ex.value:  # Gamma's error shape
        return "", lambda c: c.gamma("/markets/keyset", order="bogus")
    if "code" in ex.value:  # a price-history error with a shortened message
        return "history_error", ERRORS[TOO_LONG]
    return ("history_error" if "filters" in message else ""), ERRORS[message]


CLOB_PRICES: dict[str, Fetch] = {
    "price": lambda c: c.clob("/price", token_id=c.token(), side="BUY"),
    "midpoint": lambda c: c.clob("/midpoint", token_id=c.token()),
    "spread": lambda c: c.clob("/spread", token_id=c.token()),
    "last_trade_price": lambda c: c.clob("/last-trade-price", token_id=c.token()),
    "last_trade_price_none": lambda c: c.clob("/last-trade-price", token_id=c.token()),
    "tick_size": lambda c: c.clob("/tick-size", token_id=c.token()),
    "neg_risk": lambda c: c.clob("/neg-risk", token_id=c.token()),
    "fee_rate": lambda c: c.clob("/fee-rate", token_id=c.token()),
    "prices": _prices_body,
    "midpoints": lambda c: c.post(c.sim.clob_url, "/midpoints", [c.item()]),
    "spreads": lambda c: c.post(c.sim.clob_url, "/spreads", [c.item()]),
}


def _ws(kind: str) -> Fetch:
    async def fetch(c: Corpus) -> tuple[int, Json]:
        return 200, c.ws[kind]

    return fetch


def _ws_rule(ex: WireExample) -> Rule:
    kind = ex.value["event_type"]
    if kind == "price_change" and "price_changes" not in ex.value:
        return "", "pre-2025-09-15 price_change schemas; the sim emits the current"
    extras = {"book": "ws_book", "last_trade_price": "last_trade_price"}.get(kind, "")
    return ("new_market" if kind == "new_market" else extras), _ws(kind)


def _fixed(extras: str, fetch: Fetch | str) -> Callable[[WireExample], Rule]:
    return lambda ex: (extras, fetch)


RULES: dict[str, Callable[[WireExample], Rule]] = {
    "gamma_market": _gamma_market_rule,
    "gamma_market_refused": _fixed(
        "", "markets polyfarm refuses; the simulator lists valid ones (tests break one directly)"
    ),
    "gamma_event": _fixed("event", _neg_risk_event_body),
    "gamma_keyset": _fixed("market", lambda c: c.gamma("/markets/keyset", limit=3)),
    "gamma_outcome_prices": _fixed("", _decoded_outcome_prices),
    "gamma_market_fragment": lambda ex: (
        "",
        lambda c: _market_field(c, "feeSchedule" if ex.name == "fee_schedule" else "clobRewards"),
    ),
    "clob_book": _fixed("book", lambda c: c.clob("/book", token_id=c.token())),
    "clob_market": _fixed("", _clob_market_body),
    "clob_market_info": _fixed("", _clob_market_info_body),
    "clob_market_by_token": _fixed("", lambda c: c.clob(f"/markets-by-token/{c.token()}")),
    "clob_version": _fixed("", lambda c: c.clob("/version")),
    "clob_ok": _fixed("", lambda c: c.clob("/ok")),
    "clob_price": lambda ex: ("", CLOB_PRICES[ex.name]),
    "clob_flag": lambda ex: ("", CLOB_PRICES[ex.name]),
    "clob_token_map": lambda ex: ("", CLOB_PRICES[ex.name]),
    "clob_prices_history": _fixed(
        "", lambda c: c.clob("/prices-history", market=c.token(), interval="1d", fidelity=60)
    ),
    "ws_message": _ws_rule,
    "ws_request": _fixed("", "a client request frame, not a server payload"),
    "data_trades_v1": _fixed("data_v1", lambda c: c.data("/trades", limit=5)),
    "data_trade_v2": _fixed("", _v2_row),
    "data_trades_v2": _fixed("", lambda c: c.data("/v2/trades", limit=2)),
    "data_prices_history_v2": _fixed(
        "", lambda c: c.data("/v2/prices-history", token_id=c.token(), interval="1d")
    ),
    "data_root": _fixed("", lambda c: c.data("/")),
    "error_body": _error_rule,
}


def _any_token_key(value: dict[str, Json]) -> dict[str, Json]:
    """A map keyed by one recorded token id stands for a map keyed by any token id."""
    return {f"<{key}>": item for key, item in value.items()}


async def test_every_example_matches_the_simulator(corpus: Corpus) -> None:
    shape = Shape(allowed_extras(), {"events": "event", "markets": "market", "tags": "tag"})
    failures, checked, skipped = [], 0, []
    for ex in examples():
        rule = RULES.get(ex.kind)
        if rule is None:
            failures.append(f"no rule for example kind {ex.kind!r} ({ex.origin})")
            continue
        kind, action = rule(ex)
        if isinstance(action, str):
            skipped.append(f"{ex.origin}: {action}")
            continue
        _, got = await action(corpus)
        wanted = ex.value.get("error") if isinstance(ex.value, dict) else None
        if wanted in ERRORS and got.get("error") != wanted:
            failures.append(f"{ex.origin}: error text {got.get('error')!r}")
        reference = _any_token_key(ex.value) if ex.kind == "clob_token_map" else ex.value
        failures += [f"{ex.origin} → {e}" for e in shape.compare(reference, got, "$", kind)]
        checked += 1
    print(f"checked {checked} examples, skipped {len(skipped)}:", *skipped, sep="\n  ")
    assert not failures, "\n".join(failures)
    assert checked >= 50


async def test_gamma_string_encoded_fields(corpus: Corpus) -> None:
    status, body = await corpus.get(corpus.sim.gamma_url, "/markets/keyset", limit=40)
    assert status == 200
    for market in body["markets"]:
        for key in ("outcomes", "outcomePrices", "clobTokenIds", "umaResolutionStatuses"):
            if key in market:  # a v2 market may publish no clobTokenIds
                assert isinstance(market[key], str)
                assert isinstance(json.loads(market[key]), list)
        assert isinstance(market.get("positionIds", []), list), "positionIds is a real array"
        assert market["id"].isdigit()
        assert isinstance(market["volumeNum"], float | int)
        assert all(isinstance(p, str) for p in json.loads(market["outcomePrices"]))
        assert market["events"][0]["slug"]
        assert "eventSlug" not in market
