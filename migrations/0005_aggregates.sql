-- Aggregates kept forever: OHLC candles 1m -> 5m -> 15m -> 1h -> 4h -> 1d (each built on the
-- one below it) from price snapshots, and hourly trade volume / VWAP / buy-sell split.
-- TimescaleDB: continuous aggregates with refresh policies and real-time results.
-- Plain PostgreSQL: the same names as materialized views, refreshed by the maintenance task
-- (polyfarm.store.maintenance) in this order.

CREATE MATERIALIZED VIEW candles_1m
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '1 minute', ts) AS bucket,
       token_id,
       first(price, ts) AS open,
       max(price) AS high,
       min(price) AS low,
       last(price, ts) AS close,
       last(volume_24h, ts) AS volume_24h,
       count(price) AS samples
FROM price_snapshots
WHERE price IS NOT NULL
GROUP BY time_bucket(INTERVAL '1 minute', ts), token_id
WITH NO DATA;
--#if plain
CREATE UNIQUE INDEX candles_1m_key ON candles_1m (token_id, bucket);
--#else
CREATE INDEX candles_1m_token_bucket_idx ON candles_1m (token_id, bucket DESC);
--#endif

CREATE MATERIALIZED VIEW candles_5m
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '5 minutes', bucket) AS bucket,
       token_id,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       last(volume_24h, bucket) AS volume_24h,
       sum(samples)::bigint AS samples
FROM candles_1m
GROUP BY time_bucket(INTERVAL '5 minutes', bucket), token_id
WITH NO DATA;
--#if plain
CREATE UNIQUE INDEX candles_5m_key ON candles_5m (token_id, bucket);
--#else
CREATE INDEX candles_5m_token_bucket_idx ON candles_5m (token_id, bucket DESC);
--#endif

CREATE MATERIALIZED VIEW candles_15m
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '15 minutes', bucket) AS bucket,
       token_id,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       last(volume_24h, bucket) AS volume_24h,
       sum(samples)::bigint AS samples
FROM candles_5m
GROUP BY time_bucket(INTERVAL '15 minutes', bucket), token_id
WITH NO DATA;
--#if plain
CREATE UNIQUE INDEX candles_15m_key ON candles_15m (token_id, bucket);
--#else
CREATE INDEX candles_15m_token_bucket_idx ON candles_15m (token_id, bucket DESC);
--#endif

CREATE MATERIALIZED VIEW candles_1h
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       token_id,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       last(volume_24h, bucket) AS volume_24h,
       sum(samples)::bigint AS samples
FROM candles_15m
GROUP BY time_bucket(INTERVAL '1 hour', bucket), token_id
WITH NO DATA;
--#if plain
CREATE UNIQUE INDEX candles_1h_key ON candles_1h (token_id, bucket);
--#else
CREATE INDEX candles_1h_token_bucket_idx ON candles_1h (token_id, bucket DESC);
--#endif

CREATE MATERIALIZED VIEW candles_4h
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '4 hours', bucket) AS bucket,
       token_id,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       last(volume_24h, bucket) AS volume_24h,
       sum(samples)::bigint AS samples
FROM candles_1h
GROUP BY time_bucket(INTERVAL '4 hours', bucket), token_id
WITH NO DATA;
--#if plain
CREATE UNIQUE INDEX candles_4h_key ON candles_4h (token_id, bucket);
--#else
CREATE INDEX candles_4h_token_bucket_idx ON candles_4h (token_id, bucket DESC);
--#endif

CREATE MATERIALIZED VIEW candles_1d
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket,
       token_id,
       first(open, bucket) AS open,
       max(high) AS high,
       min(low) AS low,
       last(close, bucket) AS close,
       last(volume_24h, bucket) AS volume_24h,
       sum(samples)::bigint AS samples
FROM candles_4h
GROUP BY time_bucket(INTERVAL '1 day', bucket), token_id
WITH NO DATA;
--#if plain
CREATE UNIQUE INDEX candles_1d_key ON candles_1d (token_id, bucket);
--#else
CREATE INDEX candles_1d_token_bucket_idx ON candles_1d (token_id, bucket DESC);
--#endif

CREATE MATERIALIZED VIEW trade_volume_1h
--#if timescaledb
WITH (timescaledb.continuous, timescaledb.materialized_only = false)
--#endif
AS
SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket,
       token_id,
       count(*) AS trades,
       sum(size) AS volume,
       sum(price * size) AS notional,
       sum(price * size) / nullif(sum(size), 0) AS vwap,
       sum(CASE WHEN side = 'BUY' THEN size ELSE 0 END) AS buy_volume,
       sum(CASE WHEN side = 'SELL' THEN size ELSE 0 END) AS sell_volume,
       sum(CASE WHEN side = 'BUY' THEN 1 ELSE 0 END) AS buy_count,
       sum(CASE WHEN side = 'SELL' THEN 1 ELSE 0 END) AS sell_count,
       max(size) AS max_size
FROM trades
GROUP BY time_bucket(INTERVAL '1 hour', ts), token_id
WITH NO DATA;
--#if plain
CREATE UNIQUE INDEX trade_volume_1h_key ON trade_volume_1h (token_id, bucket);
--#else
CREATE INDEX trade_volume_1h_token_bucket_idx ON trade_volume_1h (token_id, bucket DESC);
--#endif

--#if timescaledb
SELECT add_continuous_aggregate_policy('candles_1m', start_offset => INTERVAL '3 hours', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute');
SELECT add_continuous_aggregate_policy('candles_5m', start_offset => INTERVAL '6 hours', end_offset => INTERVAL '5 minutes', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('candles_15m', start_offset => INTERVAL '12 hours', end_offset => INTERVAL '15 minutes', schedule_interval => INTERVAL '15 minutes');
SELECT add_continuous_aggregate_policy('candles_1h', start_offset => INTERVAL '2 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes');
SELECT add_continuous_aggregate_policy('candles_4h', start_offset => INTERVAL '4 days', end_offset => INTERVAL '4 hours', schedule_interval => INTERVAL '1 hour');
SELECT add_continuous_aggregate_policy('candles_1d', start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour');
SELECT add_continuous_aggregate_policy('trade_volume_1h', start_offset => INTERVAL '2 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes');
--#endif
