"""Pure-logic tests: hashing, wire formatting, books, dynamics, faults spec, limiter, clock."""

from __future__ import annotations

import hashlib
import json
import random
import re
import statistics

import pytest

from polyfarm.sim import dynamics
from polyfarm.sim.book import book_body, book_hash, book_summary, mid_half
from polyfarm.sim.clock import SimClock
from polyfarm.sim.faults import FaultController, FaultSpec, FaultSpecError
from polyfarm.sim.ratelimit import LIMITS, RateLimiter, buckets_for
from polyfarm.sim.wire import half_units_str, price_str, size_str
from polyfarm.sim.world import World, WorldParams
from tests.wire_examples import example

START = 1_772_366_400.0


def independent_hash(book: dict[str, object]) -> str:
    """The reference's algorithm written out again: SHA-1 of compact JSON in key order."""
    keys = ["market", "asset_id", "timestamp", "hash", "bids", "asks", "min_order_size",
            "tick_size", "neg_risk", "last_trade_price"]  # fmt: skip
    ordered = {key: ("" if key == "hash" else book[key]) for key in keys}
    text = json.dumps(ordered, separators=(",", ":"))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def test_hash_matches_the_book_example_and_py_clob_client_vector() -> None:
    book = example("clob_book", "composite_with_hash").value
    assert book_hash(book) == book["hash"] == independent_hash(book)
    vector = {
        "market": "0xaabbcc", "asset_id": "100", "timestamp": "123456789", "hash": "",
        "bids": [{"price": "0.3", "size": "100"}, {"price": "0.4", "size": "100"}],
        "asks": [{"price": "0.6", "size": "100"}, {"price": "0.7", "size": "100"}],
        "min_order_size": "100", "tick_size": "0.01", "neg_risk": False, "last_trade_price": "0.5",
    }  # fmt: skip
    assert book_hash(vector) == "0458ea5755c9f73d64a14636fa5c36ed460ec394"
    vector.update(timestamp="", bids=[], asks=[])
    assert book_hash(vector) == "74c6a7c81c1d572f1c877b7d3e25b80c336d8a6e"


@pytest.fixture(scope="module")
def small_world() -> World:
    world = World(WorldParams(seed=11, markets=60), START)
    for market in world.markets:
        world.open_book(market)
    return world


def test_rendered_books_hash_and_order(small_world: World) -> None:
    for market in small_world.markets:
        yes, no = book_summary(market, True), book_summary(market, False)
        for book in (yes, no):
            assert book["hash"] == independent_hash(book)
            assert re.fullmatch(r"[0-9a-f]{40}", book["hash"])
            bids = [float(level["price"]) for level in book["bids"]]
            asks = [float(level["price"]) for level in book["asks"]]
            assert bids == sorted(bids)
            assert asks == sorted(asks, reverse=True)
            assert len(bids) + len(asks) >= 10
            if 0.2 < bids[-1] < asks[-1] < 0.8:
                assert min(len(bids), len(asks)) >= 10, "tens of levels away from the edges"
            assert bids[-1] < asks[-1], "best bid (last) must be below best ask (last)"
        mirrored_bids = [(round(1 - float(lv["price"]), 4), lv["size"]) for lv in yes["asks"]]
        assert [(float(lv["price"]), lv["size"]) for lv in no["bids"]] == mirrored_bids
        assert yes["asset_id"] != no["asset_id"]
        assert yes["market"] == no["market"]


def test_hash_changes_when_a_deep_level_changes(small_world: World) -> None:
    market = small_world.markets[0]
    book = market.book
    assert book is not None
    before = book_summary(market, True)["hash"]
    deepest = min(book.bids)
    book.bids[deepest] += 1
    book.version += 1
    after = book_summary(market, True)
    assert after["hash"] != before
    assert after["hash"] == independent_hash(after)
    assert book_body(market, True) == json.dumps(after, separators=(",", ":"))


def test_wire_strings() -> None:
    assert [price_str(p) for p in (10, 100, 5000, 5100, 9990, 10000, 0, 25, 5025, 1)] == [
        "0.001", "0.01", "0.5", "0.51", "0.999", "1", "0", "0.0025", "0.5025", "0.0001",
    ]  # fmt: skip
    assert [size_str(s) for s in (125000, 31050, 1284817, 1, 0)] == [
        "1250", "310.5", "12848.17", "0.01", "0",
    ]  # fmt: skip
    assert half_units_str(8510) == "0.4255"
    assert half_units_str(10000) == "0.5"
    assert half_units_str(10025) == "0.50125"


def test_notionals_are_heavy_tailed() -> None:
    rng = random.Random(3)
    draws = [dynamics.trade_notional(rng) for _ in range(100_000)]
    shares = {cut: sum(d >= cut for d in draws) / len(draws) for cut in (500, 2000, 10_000)}
    print("whale shares", shares, "median", statistics.median(draws))
    assert shares[500] > shares[2000] > shares[10_000] > 0
    assert statistics.median(draws) < 100


def test_poisson_mean() -> None:
    rng = random.Random(5)
    for lam in (0.3, 7.0, 120.0):
        mean = statistics.fmean(dynamics.poisson(rng, lam) for _ in range(20_000))
        assert abs(mean - lam) < 0.05 * lam + 0.02


def test_sweep_consumes_levels_best_first(small_world: World) -> None:
    book = small_world.markets[1].book
    assert book is not None
    asks = sorted(book.asks)
    wanted = book.asks[asks[0]] + book.asks[asks[1]] // 2
    filled, last, changes = dynamics.sweep(book, True, wanted)
    assert filled == wanted
    assert last == asks[1]
    assert changes[0] == (False, asks[0], 0)
    assert changes[1][2] == book.asks[asks[1]] - book.asks[asks[1]] // 2


def test_fault_spec_parsing_and_scoping() -> None:
    spec = FaultSpec.parse("http_429=0.1,gamma:http_5xx=1,latency_ms=200,http_200_error=0.5")
    assert spec.value("http_429", "clob") == 0.1
    assert spec.value("http_5xx", "gamma") == 1.0
    assert spec.value("http_5xx", "clob") == 0.0
    assert spec.value("latency_ms", "data") == 200
    assert spec.value("http_200_error", "data") == 0.5
    assert spec.value("http_200_error", "gamma") == 0
    assert spec.value("timeout_s", None) == 30.0
    for bad in ("nope=1", "http_429", "http_429=2", "moon:http_429=0.1", "http_429=x"):
        with pytest.raises(FaultSpecError):
            FaultSpec.parse(bad)
    controller = FaultController("ws_drop=1", seed=1)
    assert controller.ws_active
    assert controller.roll("ws_drop", "ws")
    assert controller.counts["ws_drop"] == 1
    controller.clear()
    assert not controller.ws_active
    assert not controller.roll("ws_drop", "ws")


def test_rate_limiter_buckets_and_refill() -> None:
    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    names = buckets_for("clob", "/tick-size")
    assert names == ("global", "clob", "clob_tick_size")
    allowed = sum(limiter.check(names, 1.0) is None for _ in range(LIMITS["clob_tick_size"] + 50))
    assert allowed == LIMITS["clob_tick_size"]
    retry = limiter.check(names, 1.0)
    assert retry is not None
    assert retry >= 1
    now[0] += 1.0
    assert limiter.check(names, 1.0) is None
    assert limiter.check(names, 0.0) is None
    assert "gamma_listing" in buckets_for("gamma", "/events/keyset")


def test_clock_speed_and_advance() -> None:
    real = [100.0]
    clock = SimClock(1000.0, speed=10.0, monotonic=lambda: real[0])
    real[0] += 2
    assert clock.now() == 1020.0
    clock.advance(5)
    assert clock.now() == 1025.0
    clock.set_speed(0.0)
    real[0] += 50
    assert clock.now() == 1025.0
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_mid_half_units(small_world: World) -> None:
    book = small_world.markets[2].book
    assert book is not None
    bid, ask = book.top()
    assert bid is not None
    assert ask is not None
    assert mid_half(book) == bid + ask
