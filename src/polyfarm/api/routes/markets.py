"""``/api/markets``: the market list with filters, its facets, and one market in detail."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from polyfarm.api.deps import NO_NUL, Conn, State
from polyfarm.api.queries import market_detail as detail
from polyfarm.api.queries.markets import MarketFilter, Sort, Status, market_facets, market_page
from polyfarm.api.schemas import MarketDetail, MarketFacets, MarketPage

router = APIRouter(prefix="/api", tags=["markets"])
Interval = Literal["auto", "1m", "5m", "15m", "1h", "4h", "1d"]


@router.get("/markets")
async def list_markets(
    state: State,
    conn: Conn,
    tier: Annotated[int | None, Query(ge=0, le=4)] = None,
    category: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    tag: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="event tag slug")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="question or slug text")
    ] = None,
    status: Status = "active",
    sort: Sort = "volume",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 25,
) -> MarketPage:
    """Markets with their latest price (first outcome) and snapshots in the last 24 h."""
    where = MarketFilter(tier, category or None, tag or None, q, status, sort)
    return await market_page(conn, where, page, page_size, state.now())


# Not under /markets/: a market whose id is "facets" must stay reachable.
@router.get("/market-facets")
async def facets(conn: Conn) -> MarketFacets:
    """Categories and event tags with their market counts, for the filter menus."""
    return await market_facets(conn)


@router.get("/markets/{market_id}", responses={404: {"description": "no such market"}})
async def get_market(
    state: State,
    conn: Conn,
    market_id: Annotated[str, Path(max_length=200, pattern=NO_NUL)],
    interval: Interval = "auto",
    outcome: Annotated[int, Query(ge=0, le=63, description="outcome index")] = 0,
    trades: Annotated[int, Query(ge=0, le=500)] = 50,
) -> MarketDetail:
    """Metadata, resolution, candles at ``interval`` (auto: the finest showing all stored
    history), the latest order book, recent trades with whale tiers, the latest features."""
    request = detail.DetailRequest(interval=interval, outcome=outcome, trades=trades)
    market = await detail.read_market(conn, market_id, request, state.settings.whales)
    if market is None:
        raise HTTPException(status_code=404, detail=f"no market {market_id!r}")
    return market
