-- Dimensions: events, markets, outcome tokens, resolutions. Keyed by Polymarket's own ids.

CREATE TABLE events (
    event_id            text PRIMARY KEY,            -- Gamma event id (numeric string)
    slug                text,
    title               text,
    description         text,
    category            text,
    tags                jsonb,                       -- [{"id","label","slug"}]
    neg_risk            boolean NOT NULL DEFAULT false,
    neg_risk_market_id  text,
    start_date          timestamptz,
    end_date            timestamptz,
    active              boolean,
    closed              boolean NOT NULL DEFAULT false,
    archived            boolean NOT NULL DEFAULT false,
    volume              double precision,
    liquidity           double precision,
    raw                 jsonb,                       -- last Gamma payload, markets stripped
    first_seen          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE markets (
    market_id           text PRIMARY KEY,            -- Gamma market id (numeric string)
    event_id            text REFERENCES events (event_id),
    condition_id        text NOT NULL UNIQUE,
    question_id         text,
    slug                text,
    question            text,
    description         text,
    category            text,
    tags                jsonb,
    outcomes            jsonb,                       -- ["Yes","No"]
    neg_risk            boolean NOT NULL DEFAULT false,
    neg_risk_market_id  text,
    neg_risk_request_id text,
    group_item_title    text,
    tick_size           double precision,
    min_size            double precision,
    active              boolean,
    closed              boolean NOT NULL DEFAULT false,
    archived            boolean NOT NULL DEFAULT false,
    accepting_orders    boolean,
    enable_order_book   boolean,
    start_date          timestamptz,
    end_date            timestamptz,
    closed_time         timestamptz,
    volume              double precision,
    volume_24h          double precision,
    liquidity           double precision,
    tier                smallint,                    -- 0..4 by hours to close, NULL once closed
    first_seen          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    raw                 jsonb                        -- last Gamma payload
);
CREATE INDEX markets_event_idx ON markets (event_id);
CREATE INDEX markets_open_end_idx ON markets (end_date) WHERE NOT closed;
CREATE INDEX markets_tier_idx ON markets (tier) WHERE NOT closed;
CREATE INDEX markets_slug_idx ON markets (slug);

CREATE TABLE tokens (
    token_id            text PRIMARY KEY,            -- ERC-1155 position id, decimal string
    market_id           text NOT NULL REFERENCES markets (market_id),
    condition_id        text NOT NULL,
    outcome             text,
    outcome_index       smallint NOT NULL,
    UNIQUE (market_id, outcome_index)
);

CREATE TABLE market_resolutions (
    market_id           text PRIMARY KEY REFERENCES markets (market_id),
    condition_id        text NOT NULL,
    resolved_at         timestamptz NOT NULL,
    outcome_kind        text NOT NULL
        CHECK (outcome_kind IN ('winner', 'fifty_fifty', 'void', 'unknown')),
    winning_outcome     text,
    winning_token_id    text,
    final_prices        jsonb,                       -- {"Yes": 1.0, "No": 0.0}
    method              text NOT NULL,               -- final_prices | ws_market_resolved | clob_winner
    source              text NOT NULL,               -- gamma | clob | ws
    detected_at         timestamptz NOT NULL DEFAULT now()
);
