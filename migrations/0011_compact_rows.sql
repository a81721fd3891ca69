-- Compact rows for price snapshots, trades and book deltas.
--
-- Before: every row and every index entry repeated a 77-digit token id and the market id as
-- text, and every price and size was a double. Now:
--   * token_keys gives each token id a 4-byte surrogate, token_sid; the time series store the
--     sid, and the market id comes from the same registry (a token belongs to one market);
--   * prices are integer micro-units (1e-6) and sizes bigint micro-units. The venue quotes
--     prices with at most 4 decimals (ticks down to 0.0001; 0.0025 under protocol V2), a
--     midpoint of two of them has at most 5, and sizes have at most 6: each is an exact
--     integer number of micro-units. Decoding divides that integer by 1e6 in IEEE doubles,
--     which is correctly rounded, so it gives the double nearest to the decimal, the same
--     double the producer parsed (polyfarm.store.compact; a property test holds it to that);
--   * text codes become smallint codes (side_name(), source_name(); polyfarm.store.compact
--     holds the same mapping), a spread is best_ask - best_bid computed from the integers,
--     and a 0x-hex transaction hash is its 32 bytes.
-- Views with the old names and columns (plus token_sid, last) decode the compact tables, so
-- every reader still speaks Polymarket ids. Per-token reads go through token_keys' unique
-- index to the (token_sid, ts) index; a reader that wants a token's newest or oldest row
-- joins token_keys itself and filters on token_sid, so that the planner sees the sid as a
-- parameter and reads the index in order (a join hides that order from it).
--
-- Candles: the 1-minute candles are a view over the raw rows (at the default 60 s snapshot
-- cadence a 1-minute aggregate held one row per raw row); the 5-minute aggregate is built from
-- the raw rows, and 15m -> 1h -> 4h -> 1d on it as before. The aggregates store integer
-- prices keyed by token_sid; views with the old names decode them.

--#if timescaledb
-- The background jobs of what this migration drops go first: delete_job() cancels a run in
-- progress and waits for it, where dropping an aggregate under a running refresh fails with
-- "tuple concurrently updated".
SELECT delete_job(j.job_id)
FROM timescaledb_information.jobs j
WHERE j.hypertable_name IN ('price_snapshots', 'trades', 'book_deltas')
   OR j.hypertable_name IN (
        SELECT materialization_hypertable_name
        FROM timescaledb_information.continuous_aggregates
        WHERE view_name IN ('candles_1m', 'candles_5m', 'candles_15m', 'candles_1h',
                            'candles_4h', 'candles_1d', 'trade_volume_1h'));
--#endif

-- -- the key registry ---------------------------------------------------------------------

CREATE TABLE token_keys (
    token_sid           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id            text NOT NULL UNIQUE,
    market_id           text NOT NULL
);
CREATE INDEX token_keys_market_idx ON token_keys (market_id);

-- -- encodings, in one place ----------------------------------------------------------------

CREATE FUNCTION to_micros(value double precision)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT floor(value * 1e6::float8 + 0.5)::bigint $$;

CREATE FUNCTION from_micros(value bigint)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT value / 1e6::float8 $$;

CREATE FUNCTION side_name(code smallint)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT CASE code WHEN 1 THEN 'BUY' WHEN 2 THEN 'SELL' END $$;

CREATE FUNCTION source_name(code smallint)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT CASE code WHEN 1 THEN 'rest' WHEN 2 THEN 'ws' WHEN 3 THEN 'data_api' END $$;

CREATE FUNCTION side_code(name text)
RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT CASE name WHEN 'BUY' THEN 1 WHEN 'SELL' THEN 2 END::smallint $$;

CREATE FUNCTION source_code(name text)
RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT CASE name WHEN 'rest' THEN 1 WHEN 'ws' THEN 2 WHEN 'data_api' THEN 3 END::smallint $$;

--#if plain
-- first() and last() over integers, beside the double precision ones of 0001.
CREATE TYPE polyfarm_int_at AS (value integer, at timestamptz);

CREATE FUNCTION polyfarm_first_int_step(state polyfarm_int_at, value integer, at timestamptz)
RETURNS polyfarm_int_at
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$
    SELECT CASE
        WHEN at IS NULL THEN state
        WHEN state IS NULL OR at < state.at THEN ROW(value, at)::polyfarm_int_at
        ELSE state
    END
$$;

CREATE FUNCTION polyfarm_last_int_step(state polyfarm_int_at, value integer, at timestamptz)
RETURNS polyfarm_int_at
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$
    SELECT CASE
        WHEN at IS NULL THEN state
        WHEN state IS NULL OR at >= state.at THEN ROW(value, at)::polyfarm_int_at
        ELSE state
    END
$$;

CREATE FUNCTION polyfarm_first_int_combine(a polyfarm_int_at, b polyfarm_int_at)
RETURNS polyfarm_int_at
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$ SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a WHEN b.at < a.at THEN b ELSE a END $$;

CREATE FUNCTION polyfarm_last_int_combine(a polyfarm_int_at, b polyfarm_int_at)
RETURNS polyfarm_int_at
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$ SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a WHEN b.at >= a.at THEN b ELSE a END $$;

CREATE FUNCTION polyfarm_int_value_of(state polyfarm_int_at)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$ SELECT (state).value $$;

CREATE AGGREGATE first(integer, timestamptz) (
    SFUNC = polyfarm_first_int_step, STYPE = polyfarm_int_at,
    COMBINEFUNC = polyfarm_first_int_combine, FINALFUNC = polyfarm_int_value_of, PARALLEL = SAFE
);

CREATE AGGREGATE last(integer, timestamptz) (
    SFUNC = polyfarm_last_int_step, STYPE = polyfarm_int_at,
    COMBINEFUNC = polyfarm_last_int_combine, FINALFUNC = polyfarm_int_value_of, PARALLEL = SAFE
);
--#endif

-- -- compact tables -------------------------------------------------------------------------
-- Columns by width, widest first, so that no alignment padding sits between them.

CREATE TABLE price_points (
    ts                  timestamptz NOT NULL,
    volume_24h          double precision,            -- Gamma's, not a venue decimal
    liquidity           double precision,
    token_sid           integer NOT NULL,
    price               integer,                     -- micro-units: midpoint, else last trade
    best_bid            integer,
    best_ask            integer,
    last_trade_price    integer
);
CREATE UNIQUE INDEX price_points_token_ts_key ON price_points (token_sid, ts DESC);

CREATE TABLE trade_fills (
    ts                  timestamptz NOT NULL,        -- fill time cut to whole seconds
    received_at         timestamptz NOT NULL DEFAULT now(),
    size                bigint NOT NULL,             -- shares, micro-units
    fee_rate_bps        double precision,
    exchange_ms         bigint,
    token_sid           integer NOT NULL,
    price               integer NOT NULL,            -- micro-units
    side                smallint NOT NULL CHECK (side IN (1, 2)),
    source              smallint NOT NULL,
    trade_key           bytea NOT NULL,
    transaction_hash    bytea,                       -- the 32 bytes of a 0x-hex hash
    transaction_text    text                         -- a hash spelt any other way, as given
);
-- The unique key of 0003 (token, trade_key, ts) with ts second: a token's fills in a time
-- range are one index range.
CREATE UNIQUE INDEX trade_fills_token_ts_key ON trade_fills (token_sid, ts DESC, trade_key);

CREATE TABLE book_changes (
    ts                  timestamptz NOT NULL,        -- venue timestamp of the message
    received_at         timestamptz NOT NULL,
    size                bigint NOT NULL,             -- new total at that level, micro-units
    token_sid           integer NOT NULL,
    seq                 integer NOT NULL,            -- position in the receive stream
    price               integer NOT NULL,            -- micro-units
    best_bid            integer,
    best_ask            integer,
    side                smallint NOT NULL CHECK (side IN (1, 2))
);
CREATE UNIQUE INDEX book_changes_token_ts_seq_key ON book_changes (token_sid, ts DESC, seq);

CREATE INDEX price_points_ts_idx ON price_points USING brin (ts);
CREATE INDEX trade_fills_ts_idx ON trade_fills USING brin (ts);
CREATE INDEX book_changes_ts_idx ON book_changes USING brin (ts);

--#if timescaledb
SELECT create_hypertable('price_points', by_range('ts', INTERVAL '1 day'), create_default_indexes => false);
SELECT create_hypertable('trade_fills', by_range('ts', INTERVAL '1 day'), create_default_indexes => false);
SELECT create_hypertable('book_changes', by_range('ts', INTERVAL '6 hours'), create_default_indexes => false);
ALTER TABLE price_points SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'ts DESC'
);
ALTER TABLE trade_fills SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'ts DESC, trade_key'
);
ALTER TABLE book_changes SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'ts DESC, seq'
);
--#endif

-- -- the rows stored so far -----------------------------------------------------------------
-- Every token of every time series gets its sid (in token id order), with the market id of
-- its newest row. A value is re-encoded with to_micros(), the writer's rounding.

INSERT INTO token_keys (token_id, market_id)
SELECT token_id, (array_agg(market_id ORDER BY newest DESC, market_id))[1]
FROM (
    SELECT token_id, market_id, max(ts) AS newest FROM price_snapshots GROUP BY 1, 2
    UNION ALL
    SELECT token_id, market_id, max(ts) FROM trades GROUP BY 1, 2
    UNION ALL
    SELECT token_id, market_id, max(ts) FROM book_deltas GROUP BY 1, 2
    UNION ALL
    SELECT token_id, market_id, max(ts) FROM orderbook_snapshots GROUP BY 1, 2
    UNION ALL
    SELECT token_id, market_id, max(ts) FROM market_features GROUP BY 1, 2
) seen
GROUP BY token_id
ORDER BY token_id;

INSERT INTO price_points
    (ts, volume_24h, liquidity, token_sid, price, best_bid, best_ask, last_trade_price)
SELECT s.ts, s.volume_24h, s.liquidity, k.token_sid, to_micros(s.price), to_micros(s.best_bid),
       to_micros(s.best_ask), to_micros(s.last_trade_price)
FROM price_snapshots s JOIN token_keys k USING (token_id);

INSERT INTO trade_fills
    (ts, received_at, size, fee_rate_bps, exchange_ms, token_sid, price, side, source, trade_key,
     transaction_hash, transaction_text)
SELECT t.ts, t.received_at, to_micros(t.size), t.fee_rate_bps, t.exchange_ms, k.token_sid,
       to_micros(t.price), side_code(t.side), source_code(t.source), t.trade_key,
       CASE WHEN t.transaction_hash ~ '^0x[0-9a-f]{64}$'
            THEN decode(substr(t.transaction_hash, 3), 'hex') END,
       CASE WHEN t.transaction_hash !~ '^0x[0-9a-f]{64}$' THEN t.transaction_hash END
FROM trades t JOIN token_keys k USING (token_id);

INSERT INTO book_changes
    (ts, received_at, size, token_sid, seq, price, best_bid, best_ask, side)
SELECT d.ts, d.received_at, to_micros(d.size), k.token_sid, d.seq, to_micros(d.price),
       to_micros(d.best_bid), to_micros(d.best_ask), side_code(d.side)
FROM book_deltas d JOIN token_keys k USING (token_id);

-- -- out with the old -----------------------------------------------------------------------

DROP MATERIALIZED VIEW candles_1d;
DROP MATERIALIZED VIEW candles_4h;
DROP MATERIALIZED VIEW candles_1h;
DROP MATERIALIZED VIEW candles_15m;
DROP MATERIALIZED VIEW candles_5m;
DROP MATERIALIZED VIEW candles_1m;
DROP MATERIALIZED VIEW trade_volume_1h;
DROP TABLE price_snapshots;
DROP TABLE trades;
DROP TABLE book_deltas;

-- -- the public names, as views -------------------------------------------------------------
-- LEFT JOIN on the registry's primary key: a query that uses no registry column (a count, a
-- time range's newest ts) does not read the registry at all (PostgreSQL removes the join).

CREATE VIEW price_snapshots AS
SELECT p.ts, k.token_id, k.market_id,
       from_micros(p.price) AS price,
       from_micros(p.best_bid) AS best_bid,
       from_micros(p.best_ask) AS best_ask,
       from_micros(p.best_ask - p.best_bid) AS spread,
       from_micros(p.last_trade_price) AS last_trade_price,
       p.volume_24h, p.liquidity, p.token_sid
FROM price_points p LEFT JOIN token_keys k USING (token_sid);

CREATE VIEW trades AS
SELECT t.ts, k.token_id, k.market_id, t.trade_key,
       from_micros(t.price) AS price,
       from_micros(t.size) AS size,
       side_name(t.side) AS side,
       t.fee_rate_bps,
       coalesce('0x' || encode(t.transaction_hash, 'hex'), t.transaction_text) AS transaction_hash,
       source_name(t.source) AS source,
       t.exchange_ms, t.received_at, t.token_sid
FROM trade_fills t LEFT JOIN token_keys k USING (token_sid);

CREATE VIEW book_deltas AS
SELECT d.ts, k.token_id, k.market_id, d.seq,
       side_name(d.side) AS side,
       from_micros(d.price) AS price,
       from_micros(d.size) AS size,
       from_micros(d.best_bid) AS best_bid,
       from_micros(d.best_ask) AS best_ask,
       d.received_at, d.token_sid
FROM book_changes d LEFT JOIN token_keys k USING (token_sid);

-- -- aggregates -----------------------------------------------------------------------------
-- TimescaleDB: continuous aggregates with refresh policies and real-time results. Plain
-- PostgreSQL: materialized views of the same names, refreshed by polyfarm.store.maintenance
-- in this order.

CREATE MATERIALIZED VIEW price_candles_5m
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '5 minutes', ts) AS bucket,
       token_sid,
       first(price, ts) AS open,
       max(price) AS high,
       min(price) AS low,
       last(price, ts) AS close,
       last(volume_24h, ts) AS volume_24h,
       count(price) AS samples
FROM price_points
WHERE price IS NOT NULL
GROUP BY time_bucket(INTERVAL '5 minutes', ts), token_sid
WITH NO DATA;

CREATE MATERIALIZED VIEW price_candles_15m
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '15 minutes', bucket) AS bucket,
       token_sid,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       last(volume_24h, bucket) AS volume_24h,
       sum(samples)::bigint AS samples
FROM price_candles_5m
GROUP BY time_bucket(INTERVAL '15 minutes', bucket), token_sid
WITH NO DATA;

CREATE MATERIALIZED VIEW price_candles_1h
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       token_sid,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       last(volume_24h, bucket) AS volume_24h,
       sum(samples)::bigint AS samples
FROM price_candles_15m
GROUP BY time_bucket(INTERVAL '1 hour', bucket), token_sid
WITH NO DATA;

CREATE MATERIALIZED VIEW price_candles_4h
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '4 hours', bucket) AS bucket,
       token_sid,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       last(volume_24h, bucket) AS volume_24h,
       sum(samples)::bigint AS samples
FROM price_candles_1h
GROUP BY time_bucket(INTERVAL '4 hours', bucket), token_sid
WITH NO DATA;

CREATE MATERIALIZED VIEW price_candles_1d
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket,
       token_sid,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       last(volume_24h, bucket) AS volume_24h,
       sum(samples)::bigint AS samples
FROM price_candles_4h
GROUP BY time_bucket(INTERVAL '1 day', bucket), token_sid
WITH NO DATA;

-- Volumes in micro-units (exact sums); the notional stays a sum of doubles, as before.
CREATE MATERIALIZED VIEW trade_flow_1h
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket,
       token_sid,
       count(*) AS trades,
       sum(size)::bigint AS volume,
       sum((price / 1e6::float8) * (size / 1e6::float8)) AS notional,
       sum(CASE WHEN side = 1 THEN size ELSE 0 END)::bigint AS buy_volume,
       sum(CASE WHEN side = 2 THEN size ELSE 0 END)::bigint AS sell_volume,
       sum(CASE WHEN side = 1 THEN 1 ELSE 0 END) AS buy_count,
       sum(CASE WHEN side = 2 THEN 1 ELSE 0 END) AS sell_count,
       max(size) AS max_size
FROM trade_fills
GROUP BY time_bucket(INTERVAL '1 hour', ts), token_sid
WITH NO DATA;

--#if plain
CREATE UNIQUE INDEX price_candles_5m_key ON price_candles_5m (token_sid, bucket);
CREATE UNIQUE INDEX price_candles_15m_key ON price_candles_15m (token_sid, bucket);
CREATE UNIQUE INDEX price_candles_1h_key ON price_candles_1h (token_sid, bucket);
CREATE UNIQUE INDEX price_candles_4h_key ON price_candles_4h (token_sid, bucket);
CREATE UNIQUE INDEX price_candles_1d_key ON price_candles_1d (token_sid, bucket);
CREATE UNIQUE INDEX trade_flow_1h_key ON trade_flow_1h (token_sid, bucket);
--#else
CREATE INDEX price_candles_5m_token_bucket_idx ON price_candles_5m (token_sid, bucket DESC);
CREATE INDEX price_candles_15m_token_bucket_idx ON price_candles_15m (token_sid, bucket DESC);
CREATE INDEX price_candles_1h_token_bucket_idx ON price_candles_1h (token_sid, bucket DESC);
CREATE INDEX price_candles_4h_token_bucket_idx ON price_candles_4h (token_sid, bucket DESC);
CREATE INDEX price_candles_1d_token_bucket_idx ON price_candles_1d (token_sid, bucket DESC);
CREATE INDEX trade_flow_1h_token_bucket_idx ON trade_flow_1h (token_sid, bucket DESC);
SELECT add_continuous_aggregate_policy('price_candles_5m', start_offset => INTERVAL '6 hours', end_offset => INTERVAL '5 minutes', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('price_candles_15m', start_offset => INTERVAL '12 hours', end_offset => INTERVAL '15 minutes', schedule_interval => INTERVAL '15 minutes');
SELECT add_continuous_aggregate_policy('price_candles_1h', start_offset => INTERVAL '2 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes');
SELECT add_continuous_aggregate_policy('price_candles_4h', start_offset => INTERVAL '4 days', end_offset => INTERVAL '4 hours', schedule_interval => INTERVAL '1 hour');
SELECT add_continuous_aggregate_policy('price_candles_1d', start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour');
SELECT add_continuous_aggregate_policy('trade_flow_1h', start_offset => INTERVAL '2 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes');
-- A refresh cannot run inside this migration's transaction: the aggregates are materialised
-- over the rows moved above right after it (polyfarm.store.backfill), in this order. Without
-- that, the first policy run would hide every bucket older than its start_offset.
CREATE TABLE aggregate_backfills (
    view_name           text PRIMARY KEY,
    position            integer NOT NULL
);
INSERT INTO aggregate_backfills VALUES
    ('price_candles_5m', 1), ('price_candles_15m', 2), ('price_candles_1h', 3),
    ('price_candles_4h', 4), ('price_candles_1d', 5), ('trade_flow_1h', 6);
--#endif

-- The 1-minute candles: straight from the raw rows. Open and close by array_agg, which runs in
-- C on both flavours (plain PostgreSQL's first() and last() of 0001 are SQL functions).
CREATE VIEW candles_1m AS
SELECT time_bucket(INTERVAL '1 minute', p.ts) AS bucket,
       k.token_id,
       from_micros((array_agg(p.price ORDER BY p.ts))[1]) AS open,
       from_micros(max(p.price)) AS high,
       from_micros(min(p.price)) AS low,
       from_micros((array_agg(p.price ORDER BY p.ts DESC))[1]) AS close,
       (array_agg(p.volume_24h ORDER BY p.ts DESC))[1] AS volume_24h,
       count(p.price) AS samples,
       p.token_sid
FROM price_points p JOIN token_keys k USING (token_sid)
WHERE p.price IS NOT NULL
GROUP BY time_bucket(INTERVAL '1 minute', p.ts), k.token_id, p.token_sid;

-- On TimescaleDB, read these by token_sid (looked up in token_keys first): a continuous
-- aggregate is a UNION of the materialised and the real-time buckets, which a join on token_id
-- cannot reach into, so it would aggregate every token before joining.
CREATE VIEW candles_5m AS
SELECT c.bucket, k.token_id, from_micros(c.open) AS open, from_micros(c.high) AS high,
       from_micros(c.low) AS low, from_micros(c.close) AS close, c.volume_24h, c.samples,
       c.token_sid
FROM price_candles_5m c LEFT JOIN token_keys k USING (token_sid);

CREATE VIEW candles_15m AS
SELECT c.bucket, k.token_id, from_micros(c.open) AS open, from_micros(c.high) AS high,
       from_micros(c.low) AS low, from_micros(c.close) AS close, c.volume_24h, c.samples,
       c.token_sid
FROM price_candles_15m c LEFT JOIN token_keys k USING (token_sid);

CREATE VIEW candles_1h AS
SELECT c.bucket, k.token_id, from_micros(c.open) AS open, from_micros(c.high) AS high,
       from_micros(c.low) AS low, from_micros(c.close) AS close, c.volume_24h, c.samples,
       c.token_sid
FROM price_candles_1h c LEFT JOIN token_keys k USING (token_sid);

CREATE VIEW candles_4h AS
SELECT c.bucket, k.token_id, from_micros(c.open) AS open, from_micros(c.high) AS high,
       from_micros(c.low) AS low, from_micros(c.close) AS close, c.volume_24h, c.samples,
       c.token_sid
FROM price_candles_4h c LEFT JOIN token_keys k USING (token_sid);

CREATE VIEW candles_1d AS
SELECT c.bucket, k.token_id, from_micros(c.open) AS open, from_micros(c.high) AS high,
       from_micros(c.low) AS low, from_micros(c.close) AS close, c.volume_24h, c.samples,
       c.token_sid
FROM price_candles_1d c LEFT JOIN token_keys k USING (token_sid);

CREATE VIEW trade_volume_1h AS
SELECT f.bucket, k.token_id, f.trades,
       from_micros(f.volume) AS volume,
       f.notional,
       f.notional / nullif(from_micros(f.volume), 0) AS vwap,
       from_micros(f.buy_volume) AS buy_volume,
       from_micros(f.sell_volume) AS sell_volume,
       f.buy_count, f.sell_count,
       from_micros(f.max_size) AS max_size,
       f.token_sid
FROM trade_flow_1h f LEFT JOIN token_keys k USING (token_sid);
