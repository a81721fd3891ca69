"""Response models of the API: what the OpenAPI document promises and the dashboard reads.

Timestamps are UTC, prices are probabilities in [0, 1], sizes are shares, notionals USDC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from polyfarm.store.disk import DiskPressure
from polyfarm.store.jobs import JobState


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- health -----------------------------------------------------------------------------------


class Liveness(_Model):
    status: Literal["ok"]
    version: str
    started_at: datetime


class DatabaseHealth(_Model):
    reachable: bool
    latency_ms: float | None = None
    server_version: str | None = None
    timescaledb: str | None = None
    schema_version: int | None = None
    size_bytes: int | None = None
    role: str | None = Field(None, description="the role the API reads as")
    role_can_write: bool | None = Field(
        None,
        description="the role itself may write (the owner fallback): only READ ONLY sessions "
        "stop the API writing",
    )
    error: str | None = None


class CollectorStatus(_Model):
    collector: str
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    rows_last_run: int | None
    age_s: float | None
    allowed_s: float
    stale: bool


class BookHashChecks(_Model):
    """Live books checked against the venue's book hash, for one source of that hash:
    ``ws_book`` (WebSocket snapshot), ``ws_price_change`` (a change item) or ``rest``."""

    source: str
    verified: float
    mismatched: float
    unverifiable: float


class WebSocketHealth(_Model):
    """From the collector's own /metrics (live figures) and the stored stream rows."""

    metrics_reachable: bool
    connected_shards: int | None
    messages_total: float | None
    events_per_s: float | None
    reconnects_total: float | None
    last_event_at: datetime | None
    book_hashes: list[BookHashChecks] = Field(default_factory=list)


class JournalHealth(_Model):
    bytes: float | None
    queue_depth: float | None


class TimescaleJob(_Model):
    """One TimescaleDB background job as its scheduler last recorded it."""

    job_id: int
    application_name: str
    proc: str = Field(description="the procedure it runs, schema-qualified")
    hypertable: str | None = Field(
        description="the hypertable it works on; for a refresh policy, the continuous aggregate"
    )
    state: JobState
    scheduled: bool
    last_run_succeeded: bool | None = Field(description="null: never finished, or running now")
    last_run_started_at: datetime | None
    last_success_at: datetime | None
    next_start: datetime | None = Field(description="null: running now, paused, or never seen")
    total_runs: int
    total_failures: int
    latest_error: str | None = Field(description="the newest error on record, however old")
    latest_error_at: datetime | None


class TimescaleJobs(_Model):
    """TimescaleDB's background jobs: compression, retention, the aggregates' refreshes.
    A failing or overdue job makes the farm ``degraded``."""

    applicable: bool = Field(description="false on plain PostgreSQL, which has no such jobs")
    checked_at: datetime = Field(description="the database server's clock")
    failing: int
    overdue: int
    paused: int
    ok: int
    jobs: list[TimescaleJob]


class DiskHealth(_Model):
    """The collector's disk budget, from its /metrics (sampled once a minute); null where it
    is unknown: the collector unreachable, no limit known (an external server without
    ``storage.disk_budget_gb``), or samples too short yet for a growth rate."""

    metrics_reachable: bool
    used_bytes: int | None = Field(None, description="the database's size")
    budget_bytes: int | None = Field(
        None,
        description="size the database may reach: storage.disk_budget_gb, else its size plus "
        "the free space of the data directory's disk",
    )
    headroom_bytes: int | None = Field(None, description="what the database may still grow by")
    growth_bytes_per_day: float | None = None
    days_left: float | None = Field(
        None, description="at the current growth; null also when not growing (growth <= 0)"
    )
    retention_days: int | None = Field(
        None, description="the longest retention of a time series (retention.*_days)"
    )
    retention_days_fit: float | None = Field(
        None,
        description="days of rows the budget holds at each time series' last whole day of "
        "growth and retention (plain PostgreSQL, from the day partitions); below "
        "retention_days the budget cannot hold the retention window; null while unknown",
    )
    pressure: DiskPressure | None = Field(
        None,
        description="ok; low (below storage.warn_days); deltas_stopped (book_deltas not "
        "stored); snapshots_slowed (also the far tiers' book and feature cadences)",
    )


class DetailedHealth(_Model):
    status: Literal["ok", "degraded", "down"]
    checked_at: datetime
    database: DatabaseHealth
    collectors: list[CollectorStatus]
    websocket: WebSocketHealth
    journal: JournalHealth
    timescaledb_jobs: TimescaleJobs | None = Field(
        None, description="null when the database cannot be reached"
    )
    disk: DiskHealth


# -- stats ------------------------------------------------------------------------------------


class TableCount(_Model):
    table: str
    rows: int
    latest: datetime | None


class TierCount(_Model):
    tier: int | None  # None: open markets without a tier
    markets: int


class Stats(_Model):
    generated_at: datetime
    day_start: datetime
    markets_total: int
    markets_open: int
    markets_by_tier: list[TierCount]
    snapshots_today: int
    orderbooks_today: int
    trades_today: int
    database_size_bytes: int
    tables: list[TableCount]


# -- markets ----------------------------------------------------------------------------------


class MarketRow(_Model):
    market_id: str
    question: str | None
    slug: str | None
    category: str | None
    tier: int | None
    closed: bool
    end_date: datetime | None
    volume_24h: float | None
    liquidity: float | None
    outcome: str | None
    price: float | None
    price_at: datetime | None
    snapshots_24h: int


class MarketPage(_Model):
    items: list[MarketRow]
    total: int
    page: int
    page_size: int


class Facet(_Model):
    value: str
    label: str
    markets: int


class MarketFacets(_Model):
    categories: list[Facet]
    tags: list[Facet]


class TokenInfo(_Model):
    token_id: str
    outcome: str | None
    outcome_index: int
    price: float | None
    price_at: datetime | None


class Resolution(_Model):
    resolved_at: datetime
    outcome_kind: str
    winning_outcome: str | None
    winning_token_id: str | None
    final_prices: dict[str, float] | None
    method: str
    source: str


class CandleOut(_Model):
    bucket: datetime
    open: float
    high: float
    low: float
    close: float
    samples: int


class BookLevel(_Model):
    price: float
    size: float


class OrderBookOut(_Model):
    ts: datetime
    source: str
    bids: list[BookLevel]  # best first
    asks: list[BookLevel]
    best_bid: float | None
    best_ask: float | None
    spread: float | None
    midpoint: float | None
    bid_depth_usd: float | None
    ask_depth_usd: float | None
    bid_levels: int | None
    ask_levels: int | None
    imbalance: float | None


class TradeOut(_Model):
    ts: datetime
    token_id: str
    outcome: str | None
    price: float
    size: float
    notional: float
    side: str
    source: str
    whale_tier: int | None  # 1 large, 2 whale, 3 mega whale; None below the thresholds


class MarketDetail(_Model):
    market_id: str
    condition_id: str
    question: str | None
    description: str | None
    slug: str | None
    event_title: str | None
    category: str | None
    tags: list[str]
    tier: int | None
    active: bool | None
    closed: bool
    neg_risk: bool
    start_date: datetime | None
    end_date: datetime | None
    closed_time: datetime | None
    volume: float | None
    volume_24h: float | None
    liquidity: float | None
    first_seen: datetime
    updated_at: datetime
    tokens: list[TokenInfo]
    resolution: Resolution | None
    token_id: str | None  # the outcome token the series, book and features below belong to
    interval: str
    candles: list[CandleOut]
    book: OrderBookOut | None
    trades: list[TradeOut]
    features_at: datetime | None
    features: dict[str, float | int | bool | None]


# -- tasks ------------------------------------------------------------------------------------


class TaskStatus(_Model):
    task_name: str
    interval_s: float | None
    last_started_at: datetime
    last_status: str
    last_duration_ms: int | None
    last_rows: int | None
    last_error: str | None
    last_success_at: datetime | None
    next_run_at: datetime | None
    runs_24h: int
    failures_24h: int
    consecutive_failures: int


class TaskRun(_Model):
    id: int
    task_name: str
    tier: int | None
    started_at: datetime
    completed_at: datetime | None
    duration_ms: int | None
    status: str
    markets_processed: int | None
    rows_inserted: int | None
    error_message: str | None


class TaskRuns(_Model):
    items: list[TaskRun]
    next_before_id: int | None  # pass as before_id for the next (older) page


# -- data quality -----------------------------------------------------------------------------


class CoverageCell(_Model):
    hour: datetime
    tier: int | None  # None: markets closed since (their tier is no longer known)
    markets: int
    expected: int
    actual: int  # slots with a stored row
    unchanged: int  # slots without a row whose previous row still holds (order books)
    missing: int  # slots neither stored nor unchanged


class TierCoverage(_Model):
    tier: int | None
    markets: int  # open markets in the tier now (closed: markets seen in the window)
    expected: int
    actual: int
    unchanged: int
    missing: int
    coverage_pct: float | None  # (actual + unchanged) / expected


class Coverage(_Model):
    stream: Literal["prices", "orderbooks"]
    start: datetime
    end: datetime
    tiers: list[TierCoverage]
    hours: list[CoverageCell]


class FeedGap(_Model):
    id: int
    stream: str
    market_id: str | None
    question: str | None
    token_id: str | None
    gap_start: datetime
    gap_end: datetime
    duration_s: float
    reason: str
    repaired: bool
    detected_at: datetime


class GapSummary(_Model):
    stream: str
    reason: str
    gaps: int
    open: int  # not repaired
    seconds: float  # total length


class StaleMarket(_Model):
    market_id: str
    question: str | None
    tier: int | None
    last_snapshot_at: datetime | None
    age_s: float | None


class Gaps(_Model):
    checked_at: datetime
    stale_after_s: float
    gaps_total: int  # in the window
    gaps_open: int  # of those, not repaired
    summary: list[GapSummary]  # by stream and reason
    gaps: list[FeedGap]  # the newest ones
    stale_markets: list[StaleMarket]
    stale_total: int
