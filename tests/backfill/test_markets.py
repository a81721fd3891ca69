"""Choosing markets for a backfill from Gamma: the simulator's real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from polyfarm.backfill.markets import Selection, select_markets
from polyfarm.sim import SimConfig, Simulator
from tests.backfill.support import FIXED_START, venue


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimConfig(
        markets=40, seed=3, speed=0.0, rate_limits=False, start_time=FIXED_START,
        new_markets_per_hour=0.0,
    )  # fmt: skip
    async with Simulator(config) as simulator:
        simulator.clock.advance(6 * 3600)
        simulator.step()
        yield simulator


async def test_markets_are_chosen_by_id_slug_event_tag_and_state(sim: Simulator) -> None:
    markets = sim.world.markets
    open_ = {str(m.gamma_id) for m in markets if m.closed_s is None}
    closed = [m for m in markets if m.closed_s is not None]
    assert open_
    assert closed, "the choice by id and slug reaches closed markets too"
    event = next(m.event for m in markets if len(m.event.markets) > 1)
    tag = next(t for m in markets for t in m.event.tags)
    async with venue(sim) as clients:

        async def ids(selection: Selection) -> set[str]:
            return {s.market_id for s in await select_markets(clients.gamma, selection)}

        by_id = await ids(Selection(market_ids=(str(closed[0].gamma_id), str(markets[0].gamma_id))))
        by_slug = await ids(Selection(slugs=(closed[0].slug,)))
        by_event = await ids(Selection(events=(event.slug,)))
        by_event_id = await ids(Selection(events=(str(event.gamma_id),)))
        by_tag = await ids(Selection(tags=(tag["id"],)))
        every_open = await ids(Selection(all_open=True))
    assert by_id == {str(closed[0].gamma_id), str(markets[0].gamma_id)}
    assert by_slug == {str(closed[0].gamma_id)}
    assert by_event == by_event_id == {str(m.gamma_id) for m in event.markets}
    tagged = {str(m.gamma_id) for m in markets if tag in m.event.tags and m.closed_s is None}
    assert by_tag == tagged
    assert every_open == open_
    assert Selection().empty
    assert not Selection(all_open=True).empty
