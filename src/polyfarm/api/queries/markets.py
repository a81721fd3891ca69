"""Reads behind ``/api/markets``: the filtered, paginated list and its facets.

One static WHERE clause serves every filter combination: a filter left out is a NULL
parameter. The markets table is small (thousands of rows); the per-row price and snapshot count
are index probes on ``price_snapshots (token_id, ts DESC)`` for the page's markets only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from polyfarm.api.schemas import Facet, MarketFacets, MarketPage, MarketRow

Status = Literal["active", "closed", "all"]
Sort = Literal["volume", "end_date", "question", "updated"]

_WHERE = """
    WHERE ($1::smallint IS NULL OR m.tier = $1)
      AND ($2::text IS NULL OR m.category = $2)
      AND ($3::text IS NULL OR m.question ILIKE $3 OR m.slug ILIKE $3 OR m.market_id = $6)
      AND ($4::text = 'all' OR (m.closed = ($4::text = 'closed')))
      AND ($5::text IS NULL OR EXISTS (
            SELECT 1 FROM events e, jsonb_array_elements(coalesce(e.tags, '[]')) AS tag
            WHERE e.event_id = m.event_id AND tag ->> 'slug' = $5))
"""
_ORDER = """
    ORDER BY
      CASE WHEN $7::text = 'volume' THEN m.volume_24h END DESC NULLS LAST,
      CASE WHEN $7::text = 'end_date' THEN m.end_date END ASC NULLS LAST,
      CASE WHEN $7::text = 'question' THEN m.question END ASC,
      CASE WHEN $7::text = 'updated' THEN m.updated_at END DESC,
      m.market_id
"""
# Fixed fragments only; every value is a numbered parameter.
_COLUMNS = "m.market_id, m.question, m.slug, m.category, m.tier, m.closed, m.end_date, \
m.volume_24h, m.liquidity"
_PAGE = "SELECT " + _COLUMNS + " FROM markets m" + _WHERE + _ORDER + " LIMIT $8 OFFSET $9"  # noqa: S608
_COUNT = "SELECT count(*) FROM markets m" + _WHERE  # noqa: S608

_LATEST = """
    SELECT t.market_id, t.outcome, p.price, p.ts AS price_at, c.snapshots_24h
    FROM tokens t
    LEFT JOIN token_keys k USING (token_id)
    LEFT JOIN LATERAL (
        SELECT price, ts FROM price_snapshots s
        WHERE s.token_sid = k.token_sid ORDER BY ts DESC LIMIT 1) p ON true
    CROSS JOIN LATERAL (
        SELECT count(*) AS snapshots_24h FROM price_snapshots s
        WHERE s.token_sid = k.token_sid AND s.ts > $2) c
    WHERE t.market_id = ANY($1::text[]) AND t.outcome_index = 0
"""


@dataclass(frozen=True)
class MarketFilter:
    tier: int | None = None
    category: str | None = None
    tag: str | None = None
    search: str | None = None
    status: Status = "active"
    sort: Sort = "volume"

    def params(self) -> tuple[object, ...]:
        text = self.search.strip() if self.search else ""
        pattern = f"%{_escape_like(text)}%" if text else None
        return (
            self.tier,
            self.category,
            pattern,
            self.status,
            self.tag,
            text or None,
        )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def market_page(
    conn: asyncpg.Connection, where: MarketFilter, page: int, page_size: int, now: datetime
) -> MarketPage:
    params = where.params()
    total: int = await conn.fetchval(_COUNT, *params)
    rows = await conn.fetch(_PAGE, *params, where.sort, page_size, (page - 1) * page_size)
    latest = {
        r["market_id"]: r
        for r in await conn.fetch(
            _LATEST, [r["market_id"] for r in rows], now - timedelta(hours=24)
        )
    }
    items = []
    for r in rows:
        extra = latest.get(r["market_id"])
        items.append(
            MarketRow(
                **dict(r),
                outcome=extra["outcome"] if extra else None,
                price=extra["price"] if extra else None,
                price_at=extra["price_at"] if extra else None,
                snapshots_24h=extra["snapshots_24h"] if extra else 0,
            )
        )
    return MarketPage(items=items, total=total, page=page, page_size=page_size)


async def market_facets(conn: asyncpg.Connection) -> MarketFacets:
    categories = await conn.fetch(
        "SELECT category, count(*) AS n FROM markets WHERE category IS NOT NULL "
        "GROUP BY category ORDER BY n DESC, category"
    )
    tags = await conn.fetch(
        """
        SELECT tag ->> 'slug' AS slug, min(tag ->> 'label') AS label, count(*) AS n
        FROM markets m JOIN events e USING (event_id),
             jsonb_array_elements(coalesce(e.tags, '[]')) AS tag
        WHERE tag ->> 'slug' IS NOT NULL
        GROUP BY 1 ORDER BY n DESC, slug
        """
    )
    return MarketFacets(
        categories=[Facet(value=r[0], label=r[0], markets=r[1]) for r in categories],
        tags=[Facet(value=r["slug"], label=r["label"] or r["slug"], markets=r["n"]) for r in tags],
    )
