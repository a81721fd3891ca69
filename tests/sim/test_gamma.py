"""Gamma over HTTP: keyset paging, legacy offset lists, filters, lookups, errors."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from polyfarm.sim import Simulator

from .support import advance

Json = Any


async def get(http: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Json, Any]:
    async with http.get(url, params=params) as response:
        return response.status, await response.json(content_type=None), response.headers


async def walk(
    http: aiohttp.ClientSession, url: str, key: str, **params: Any
) -> tuple[list[Json], list[int]]:
    """Follow ``next_cursor`` via ``after_cursor``; returns all rows and the page sizes."""
    rows, sizes, cursor = [], [], None
    while True:
        query = dict(params, **({"after_cursor": cursor} if cursor else {}))
        status, body, _ = await get(http, url, **query)
        assert status == 200, body
        rows += body[key]
        sizes.append(len(body[key]))
        cursor = body.get("next_cursor")
        if cursor is None:
            return rows, sizes
        assert cursor, "next_cursor is absent on the last page, never empty"


async def test_keyset_visits_every_open_market_exactly_once(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    await advance(sim, 2 * 3600, steps=4)
    rows, sizes = await walk(http, f"{sim.gamma_url}/markets/keyset", "markets", limit=1000)
    ids = [int(row["id"]) for row in rows]
    open_ids = sorted(m.gamma_id for m in sim.world.markets if m.is_open)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == open_ids
    assert ids == sorted(ids), "default order is ascending id"
    assert max(sizes) == 100
    assert all(size == 100 for size in sizes[:-1])
    closed, _ = await walk(
        http, f"{sim.gamma_url}/markets/keyset", "markets", limit=37, closed="true"
    )
    closed_ids = sorted(int(row["id"]) for row in closed)
    assert closed_ids == sorted(m.gamma_id for m in sim.world.markets if not m.is_open)
    assert closed_ids
    assert all(row["closed"] for row in closed)
    assert not any(row["closed"] for row in rows)


async def test_keyset_ordering_pages_stay_consistent(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    rows, _ = await walk(
        http, f"{sim.gamma_url}/markets/keyset", "markets", limit=30, order="volumeNum"
    )
    volumes = [row["volumeNum"] for row in rows]
    assert volumes == sorted(volumes, reverse=True)
    assert len({r["id"] for r in rows}) == len(rows)
    status, body, _ = await get(http, f"{sim.gamma_url}/markets/keyset", order="nonsense")
    assert status == 422
    assert body == {
        "type": "validation error",
        "error": "order fields are not valid",
    }


async def test_wrong_cursor_names_are_ignored_and_offset_rejected(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    url = f"{sim.gamma_url}/markets/keyset"
    _, first, _ = await get(http, url, limit=5)
    for wrong in ("cursor", "next_cursor"):
        _, again, _ = await get(http, url, limit=5, **{wrong: first["next_cursor"]})
        assert [m["id"] for m in again["markets"]] == [m["id"] for m in first["markets"]]
    _, second, _ = await get(http, url, limit=5, after_cursor=first["next_cursor"])
    assert int(second["markets"][0]["id"]) > int(first["markets"][-1]["id"])
    status, body, _ = await get(http, url, offset=5)
    assert status == 422
    assert body["type"] == "validation error"
    status, body, _ = await get(http, url, after_cursor="garbage!")
    assert status == 422


async def test_events_keyset(sim: Simulator, http: aiohttp.ClientSession) -> None:
    status, body, _ = await get(http, f"{sim.gamma_url}/events/keyset")
    assert status == 200
    assert len(body["events"]) == 20, "default limit"
    rows, sizes = await walk(http, f"{sim.gamma_url}/events/keyset", "events", limit=5000)
    assert max(sizes) <= 500
    assert sorted(int(e["id"]) for e in rows) == sorted(
        e.gamma_id for e in sim.world.events if not e.is_closed()
    )
    for event in rows:
        assert isinstance(event["liquidity"], float | int)
        assert isinstance(event["volume"], float | int)
        for market in event["markets"]:
            assert isinstance(market["liquidity"], str)
            assert "events" not in market
        if event["negRisk"]:
            assert event["enableNegRisk"]
            assert all(m["negRiskMarketID"] == event["negRiskMarketID"] for m in event["markets"])


async def test_legacy_lists_are_deprecated_and_capped(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    open_events = sum(not e.is_closed() for e in sim.world.events)
    for noun, available in (("markets", len(sim.world.open_markets())), ("events", open_events)):
        status, body, headers = await get(http, f"{sim.gamma_url}/{noun}", limit=1000)
        assert status == 200
        assert isinstance(body, list)
        assert len(body) == min(100, available)
        assert headers["deprecation"] == "true"
        assert headers["sunset"] == "Fri, 01 May 2026 00:00:00 GMT"
        assert headers["warning"] == f'299 - "use /{noun}/keyset"'
        status, body, _ = await get(http, f"{sim.gamma_url}/{noun}", offset=2000)
        assert status == 200
        assert body == []
        status, body, _ = await get(http, f"{sim.gamma_url}/{noun}", offset=3000)
        assert status == 422
        assert body == {
            "type": "validation error",
            "error": f"offset too large, use /{noun}/keyset for deeper pagination",
        }
    _, page, _ = await get(http, f"{sim.gamma_url}/markets", limit=10, offset=10)
    assert [int(m["id"]) for m in page] == [m.gamma_id for m in sim.world.markets if m.is_open][
        10:20
    ]


async def test_closed_defaults_to_false_and_lookups(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    await advance(sim, 3 * 3600, steps=3)
    closed = next(m for m in sim.world.markets if not m.is_open)
    status, body, _ = await get(http, f"{sim.gamma_url}/markets", slug=closed.slug)
    assert status == 200
    assert body == []
    _, body, _ = await get(http, f"{sim.gamma_url}/markets", slug=closed.slug, closed="true")
    assert [m["conditionId"] for m in body] == [closed.condition_id]
    for path in (f"/markets/slug/{closed.slug}", f"/markets/{closed.gamma_id}"):
        status, body, _ = await get(http, sim.gamma_url + path)
        assert status == 200
        assert body["closed"] is True
        assert body["slug"] == closed.slug
    status, body, _ = await get(http, f"{sim.gamma_url}/markets/999999999")
    assert status == 404
    assert body["type"] == "not found error"
    status, body, _ = await get(http, f"{sim.gamma_url}/events/{closed.event.gamma_id}")
    assert status == 200
    assert closed.condition_id in [m["conditionId"] for m in body["markets"]]
    _, by_slug, _ = await get(http, f"{sim.gamma_url}/events/slug/{closed.event.slug}")
    assert by_slug["id"] == body["id"]


@pytest.mark.parametrize("param", ["condition_ids", "clob_token_ids", "position_ids", "id"])
async def test_repeated_array_filters(
    sim: Simulator, http: aiohttp.ClientSession, param: str
) -> None:
    """``clob_token_ids`` and ``position_ids`` filter on the id field of that name, whichever
    of them holds a market's trading ids."""
    published = {"clob_token_ids": "ctf_ids", "position_ids": "position_ids"}.get(param)
    chosen = [
        m for m in sim.world.markets if m.is_open and getattr(m, published or "slug") is not None
    ][:3]
    values = {
        "condition_ids": [m.condition_id for m in chosen],
        "clob_token_ids": [m.ctf_ids[1] for m in chosen if m.ctf_ids],
        "position_ids": [m.position_ids[1] for m in chosen if m.position_ids],
        "id": [str(m.gamma_id) for m in chosen],
    }[param]
    async with http.get(
        f"{sim.gamma_url}/markets/keyset", params=[(param, v) for v in values]
    ) as response:
        body = await response.json()
    assert sorted(m["conditionId"] for m in body["markets"]) == sorted(
        m.condition_id for m in chosen
    )
