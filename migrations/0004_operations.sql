-- Operations: what ran, how healthy each collector is, what holes we know of, what we refused.

CREATE TABLE task_runs (
    id                  bigserial PRIMARY KEY,
    task_name           text NOT NULL,
    tier                smallint,
    started_at          timestamptz NOT NULL,
    completed_at        timestamptz,
    duration_ms         integer,
    status              text NOT NULL CHECK (status IN ('running', 'success', 'failed', 'cancelled')),
    markets_processed   integer,
    rows_inserted       integer,
    error_message       text,
    error_traceback     text
);
CREATE INDEX task_runs_name_started_idx ON task_runs (task_name, started_at DESC);
CREATE INDEX task_runs_started_idx ON task_runs (started_at DESC);

CREATE TABLE collector_health (
    collector           text PRIMARY KEY,
    last_run_at         timestamptz,
    last_success_at     timestamptz,
    last_error_at       timestamptz,
    last_error          text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    rows_last_run       integer,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Every hole in a stream that we know of and could not prove filled.
CREATE TABLE feed_gaps (
    id                  bigserial PRIMARY KEY,
    stream              text NOT NULL,               -- ws_trades | ws_book | prices | ...
    token_id            text,
    market_id           text,
    gap_start           timestamptz NOT NULL,
    gap_end             timestamptz NOT NULL,
    reason              text NOT NULL,
    repaired            boolean NOT NULL DEFAULT false,
    detected_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (gap_end >= gap_start)
);
CREATE INDEX feed_gaps_start_idx ON feed_gaps (gap_start DESC);
CREATE INDEX feed_gaps_token_idx ON feed_gaps (token_id, gap_start DESC);

-- Whale trades and their price impact; impact columns are filled in as 1 and 5 minutes pass.
CREATE TABLE whale_events (
    ts                  timestamptz NOT NULL,
    token_id            text NOT NULL,
    market_id           text NOT NULL,
    trade_key           bytea NOT NULL,
    price               double precision NOT NULL,
    size                double precision NOT NULL,
    notional            double precision NOT NULL,   -- USDC = price x size
    side                text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    whale_tier          smallint NOT NULL CHECK (whale_tier BETWEEN 1 AND 3),
    price_before        double precision,
    price_after_1m      double precision,
    price_after_5m      double precision,
    impact_1m           double precision,
    impact_5m           double precision,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, trade_key, ts)
);
CREATE INDEX whale_events_ts_idx ON whale_events (ts DESC);
CREATE INDEX whale_events_pending_idx ON whale_events (ts) WHERE price_after_5m IS NULL;

-- Strategy tables (seed 000), so later phases have a home.
CREATE TABLE market_relationships (
    id                  bigserial PRIMARY KEY,
    market_id_a         text NOT NULL REFERENCES markets (market_id),
    market_id_b         text NOT NULL REFERENCES markets (market_id),
    relationship_type   text NOT NULL,
    confidence          double precision CHECK (confidence BETWEEN 0 AND 1),
    metadata            jsonb,
    detected_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (market_id_a, market_id_b, relationship_type)
);

CREATE TABLE bot_trades (
    id                  bigserial PRIMARY KEY,
    ts                  timestamptz NOT NULL DEFAULT now(),
    market_id           text NOT NULL,
    token_id            text NOT NULL,
    side                text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price               double precision NOT NULL,
    size                double precision NOT NULL,
    order_id            text,
    strategy            text,
    paper_trade         boolean NOT NULL DEFAULT true,
    pnl                 double precision
);

CREATE TABLE bot_positions (
    id                  bigserial PRIMARY KEY,
    market_id           text NOT NULL,
    token_id            text NOT NULL,
    side                text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    size                double precision NOT NULL,
    avg_entry_price     double precision NOT NULL,
    current_price       double precision,
    strategy            text NOT NULL DEFAULT '',
    opened_at           timestamptz NOT NULL DEFAULT now(),
    closed_at           timestamptz,
    status              text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    pnl                 double precision NOT NULL DEFAULT 0,
    UNIQUE (market_id, token_id, side, strategy)
);
