-- Backfill: what the venue still serves of the past, stored apart from what polyfarm saw live.
--
-- history_points: the venue's own price history (CLOB /prices-history, Data API
-- /v2/prices-history): one forward-filled midpoint per bucket, sampled by the venue. It is not
-- a polyfarm snapshot (no bid, ask or spread), so it never goes into price_points; the
-- bucket width it was served at (fidelity_s) and the route that served it say what it is.
-- One price per token and instant: a slot already stored at one fidelity is not stored again
-- at another.
--
-- Backfilled trades go into trade_fills under the live fills' identity key (source data_api),
-- so a fill seen live and backfilled is one row.

CREATE TABLE history_points (
    ts                  timestamptz NOT NULL,        -- the bucket's start (venue time)
    fetched_at          timestamptz NOT NULL DEFAULT now(),
    token_sid           integer NOT NULL,
    price               integer NOT NULL,            -- micro-units: the bucket's midpoint
    fidelity_s          integer NOT NULL CHECK (fidelity_s > 0),
    route               smallint NOT NULL            -- 1 Data API /v2/prices-history, 2 CLOB
                        CHECK (route IN (1, 2))
)
--#if plain
PARTITION BY RANGE (ts)
--#endif
;
CREATE UNIQUE INDEX history_points_token_ts_key ON history_points (token_sid, ts DESC);

--#if timescaledb
SELECT create_hypertable('history_points', by_range('ts', INTERVAL '1 day'),
                         create_default_indexes => false);
-- Kept for good (the venue's history, fetched once), compressed like the other series: a
-- token's day of minutes is one batch, and its prices change little from one to the next.
ALTER TABLE history_points SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'ts DESC'
);
--#endif
--#if plain
-- Day partitions are made by polyfarm.store.partitions (ahead of time and on demand for an
-- older backfilled row); a brin index like the other time series'.
CREATE INDEX history_points_ts_idx ON history_points USING brin (ts);
--#endif

CREATE FUNCTION history_route_name(code smallint)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT CASE code WHEN 1 THEN 'data_api' WHEN 2 THEN 'clob' END $$;

CREATE VIEW price_history AS
SELECT h.ts, k.token_id, k.market_id,
       from_micros(h.price) AS price,
       h.fidelity_s,
       history_route_name(h.route) AS route,
       h.fetched_at, h.token_sid
FROM history_points h LEFT JOIN token_keys k USING (token_sid);

-- What a backfill has done, so that a run resumes after a crash and a second run asks the
-- venue nothing twice. One row per series ('prices': a token; 'trades': a market's condition
-- id) and window; a window is done once its row exists with window_end at or past the end
-- wanted. fidelity_s: the finest bucket the venue served for the window (prices; NULL when it
-- served none); missing_slots: buckets of the window it could not fill.
CREATE TABLE backfill_progress (
    series              text NOT NULL CHECK (series IN ('prices', 'trades')),
    subject             text NOT NULL,
    window_start        timestamptz NOT NULL,
    window_end          timestamptz NOT NULL,
    fidelity_s          integer,
    route               text,
    rows_stored         integer NOT NULL DEFAULT 0,
    missing_slots       integer NOT NULL DEFAULT 0,
    done_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (series, subject, window_start),
    CHECK (window_end > window_start)
);

-- The minute-grid repair: how far it has looked (one row per kind of check), so each round
-- reads only the minutes since the last.
CREATE TABLE grid_repair_state (
    name                text PRIMARY KEY,
    checked_until       timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A hole that cannot be filled says why: the venue no longer serves that grain, the market
-- was not trading, ... NULL while it is still open to repair.
ALTER TABLE feed_gaps ADD COLUMN unrepairable text;
