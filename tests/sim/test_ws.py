"""The market WebSocket over a real socket: dump, deltas, keepalive, dynamic subscriptions, cap."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp

from polyfarm.sim import Simulator

from .support import Feed, advance, book_seeds, feed, reference_hash, running

Event = dict[str, Any]


class Books:
    """A client-side book keeper following the reference's §3.4 rules."""

    def __init__(self, seeds: dict[str, dict[str, Any]]) -> None:
        self.books: dict[str, dict[str, Any]] = {}
        self.seeds = seeds  # the hash inputs WebSocket books leave out, from metadata
        self.hash_checks = 0

    def apply(self, event: Event) -> list[str]:
        kind = event.get("event_type")
        if kind == "book":
            self.books[event["asset_id"]] = {
                **event,
                "bids": {lv["price"]: lv["size"] for lv in event["bids"]},
                "asks": {lv["price"]: lv["size"] for lv in event["asks"]},
            }
            return [] if self.hash(event["asset_id"]) == event["hash"] else ["dump hash mismatch"]
        if kind == "price_change":
            return self._price_change(event)
        if kind == "last_trade_price" and event["asset_id"] in self.books:
            self.books[event["asset_id"]]["last_trade_price"] = event["price"]
        if kind == "tick_size_change" and event["asset_id"] in self.books:
            self.books[event["asset_id"]]["tick_size"] = event["new_tick_size"]
        return []

    def _price_change(self, event: Event) -> list[str]:
        expected: dict[str, dict[str, str]] = {}
        for item in event["price_changes"]:
            book = self.books.get(item["asset_id"])
            if book is None:
                continue
            side = book["bids" if item["side"] == "BUY" else "asks"]
            if item["size"] == "0":
                side.pop(item["price"], None)
            else:
                side[item["price"]] = item["size"]
            book["timestamp"] = event["timestamp"]
            expected[item["asset_id"]] = item
        errors = []
        for asset, item in expected.items():
            self.hash_checks += 1
            if self.hash(asset) != item["hash"]:
                errors.append(f"hash mismatch for {asset[:12]} at {event['timestamp']}")
            bids, asks = self.levels(asset)
            best = (bids[-1]["price"] if bids else "0", asks[-1]["price"] if asks else "1")
            if best != (item["best_bid"], item["best_ask"]):
                errors.append(
                    f"best bid/ask mismatch {best} vs {item['best_bid']}/{item['best_ask']}"
                )
        return errors

    def levels(self, asset: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        book = self.books[asset]
        bids = sorted(book["bids"].items(), key=lambda kv: Decimal(kv[0]))
        asks = sorted(book["asks"].items(), key=lambda kv: Decimal(kv[0]), reverse=True)
        return [{"price": p, "size": s} for p, s in bids], [
            {"price": p, "size": s} for p, s in asks
        ]

    def hash(self, asset: str) -> str:
        bids, asks = self.levels(asset)
        book = {**self.books[asset], "asset_id": asset, "bids": bids, "asks": asks}
        return reference_hash(book, self.seeds.get(asset))


def open_assets(sim: Simulator) -> list[str]:
    return [t for m in sim.world.markets if m.is_open for t in (m.yes_token, m.no_token)]


async def test_dump_then_deltas_rebuild_the_rest_books(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    assets = open_assets(sim)
    async with feed(http, sim) as reader:
        await reader.subscribe(assets)
        dump = await reader.read_until(lambda events: len(events) >= len(assets))
        assert sorted(e["asset_id"] for e in dump if e["event_type"] == "book") == sorted(assets)
        assert any(frame.startswith("[") for frame in reader.frames), (
            "the dump arrives as JSON arrays"
        )
        for _ in range(6):
            await advance(sim, 10)
            await reader.read(quiet=0.1)
        books, errors = Books(book_seeds(sim)), []
        for event in reader.events:
            errors += books.apply(event)
        assert not errors, errors[:5]
        kinds = {e["event_type"] for e in reader.events}
        assert {"book", "price_change", "last_trade_price"} <= kinds
        assert books.hash_checks > 100
        assert not kinds & {"best_bid_ask", "new_market", "market_resolved"}, (
            "custom features are off"
        )
        async with http.post(
            f"{sim.clob_url}/books", json=[{"token_id": a} for a in assets]
        ) as response:
            rest = {b["asset_id"]: b for b in await response.json()}
        for asset in assets:
            if asset in rest:
                assert books.hash(asset) == rest[asset]["hash"], (
                    "WS-maintained book equals REST /book"
                )


async def test_price_change_covers_both_tokens_and_trades_are_well_formed(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    async with feed(http, sim) as reader:
        await reader.subscribe(open_assets(sim))
        await reader.read()
        await advance(sim, 60, steps=3)
        await reader.read()
    for change in reader.of_type("price_change"):
        assets = {item["asset_id"] for item in change["price_changes"]}
        market = sim.world.by_condition[change["market"]]
        assert assets == {market.yes_token, market.no_token}
        for yes_item, no_item in zip(
            change["price_changes"][::2], change["price_changes"][1::2], strict=True
        ):
            assert Decimal(yes_item["price"]) + Decimal(no_item["price"]) == 1
            assert yes_item["size"] == no_item["size"]
            assert yes_item["side"] != no_item["side"]
    trades = reader.of_type("last_trade_price")
    assert trades
    for trade in trades:
        assert set(trade) == {
            "asset_id", "event_type", "fee_rate_bps", "market", "price", "side", "size",
            "timestamp", "transaction_hash",
        }  # fmt: skip
        assert trade["side"] in ("BUY", "SELL")
        assert trade["timestamp"].isdigit()
        assert Decimal(trade["size"]) > 0


async def test_ping_pong_and_dynamic_subscriptions(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    markets = [m for m in sim.world.markets if m.is_open]
    first, second = markets[:40], markets[40:80]
    async with feed(http, sim) as reader:
        await reader.subscribe([m.yes_token for m in first])
        await reader.send("PING")
        dump = await reader.read()
        assert "PONG" in reader.texts
        assert len([e for e in dump if e["event_type"] == "book"]) == 40
        await reader.send({"assets_ids": [m.yes_token for m in second], "operation": "subscribe"})
        added = await reader.read()
        assert {e["asset_id"] for e in added if e["event_type"] == "book"} == {
            m.yes_token for m in second
        }
        await reader.send({"assets_ids": [m.yes_token for m in first], "operation": "unsubscribe"})
        await reader.read(quiet=0.1)
        await advance(sim, 120, steps=4)
        later = await reader.read()
    first_ids = {m.condition_id for m in first}
    live = [e for e in later if e["event_type"] in ("price_change", "last_trade_price")]
    assert live
    assert all(e["market"] not in first_ids for e in live)


async def test_asset_cap_silently_drops_extra_assets(http: aiohttp.ClientSession) -> None:
    async with running(ws_asset_cap=10) as sim:
        markets = [m for m in sim.world.markets if m.is_open][:30]
        async with feed(http, sim) as reader:
            await reader.subscribe([m.yes_token for m in markets])
            dump = await reader.read()
            await advance(sim, 300, steps=5)
            live = await reader.read()
    capped = {m.condition_id for m in markets[:10]}
    assert {e["asset_id"] for e in dump} == {m.yes_token for m in markets[:10]}
    assert live
    assert all(e["market"] in capped for e in live if "market" in e)


async def test_custom_features(http: aiohttp.ClientSession) -> None:
    async with (
        running(no_new_assets_interval_s=0.1, speed=0.0) as sim,
        feed(http, sim) as custom,
        feed(http, sim) as plain,
    ):
        await custom.subscribe(open_assets(sim), custom=True)
        await plain.subscribe(open_assets(sim), dump=False)
        wanted = {"best_bid_ask", "new_market", "market_resolved", "tick_size_change"}
        for _ in range(24):
            await advance(sim, 1800)
            await custom.read(quiet=0.2)
            await plain.read(quiet=0.05)
            if wanted <= {e["event_type"] for e in custom.events}:
                break
        await plain.read()
    assert "NO NEW ASSETS" in custom.texts
    assert "NO NEW ASSETS" not in plain.texts
    assert {"best_bid_ask", "new_market", "market_resolved", "tick_size_change"} <= {
        e["event_type"] for e in custom.events
    }
    assert not {e["event_type"] for e in plain.events} & {
        "best_bid_ask",
        "new_market",
        "market_resolved",
        "book",
    }
    for resolved in custom.of_type("market_resolved"):
        market = sim.world.by_condition[resolved["market"]]
        assert resolved["winning_asset_id"] in resolved["assets_ids"]
        assert market.closed_s is not None
    for quote in custom.of_type("best_bid_ask"):
        assert Decimal(quote["best_ask"]) - Decimal(quote["best_bid"]) == Decimal(quote["spread"])


async def test_feed_closes_cleanly_on_shutdown(http: aiohttp.ClientSession) -> None:
    async with running() as sim, http.ws_connect(sim.ws_url) as ws:
        reader = Feed(ws)
        await reader.subscribe(open_assets(sim)[:4])
        await reader.read()
        await sim.stop()
        await reader.read(quiet=1.0)
        assert reader.closed
        assert ws.closed
