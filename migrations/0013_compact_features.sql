-- Compact feature rows, as 0011 and 0012 did for the other time series.
--
-- The 67 features stay one column each: a float8[] of them measured 6 % larger (its own
-- header and NULL bitmap; BENCHMARKS.md, "Footprint"), and TimescaleDB compresses columns one
-- by one. Now:
--   * keyed by token_sid (token_keys); the market id comes from the registry;
--   * the venue's decimals (best bid and ask, last trade price, wall prices, tick size) are
--     integer micro-units, level counts smallints;
--   * the spread and midpoint follow exactly from the best bid and ask, and the price is the
--     midpoint or else the last trade price (polyfarm.stream.features): none of the three is
--     stored, and the writer refuses a row where they disagree;
--   * columns by width, widest first, so that no padding sits between them (the old table's
--     mix of integers, smallints and doubles padded about 20 bytes a row).
-- Whether the book and price features are copies of the order-book and price snapshots of the
-- same token and time was looked at: they come from the live book at the feature's own
-- cadence, not from those rows, so they stay.

--#if timescaledb
SELECT delete_job(j.job_id)
FROM timescaledb_information.jobs j
WHERE j.hypertable_name = 'market_features';
--#endif

CREATE TABLE feature_samples (
    ts                      timestamptz NOT NULL,
    price_change_1d         double precision,
    price_change_1w         double precision,
    price_change_1m         double precision,
    volume_total            double precision,
    volume_24h              double precision,
    volume_1w               double precision,
    liquidity               double precision,
    bid_depth_5             double precision,
    bid_depth_10            double precision,
    bid_depth_20            double precision,
    bid_depth_50            double precision,
    ask_depth_5             double precision,
    ask_depth_10            double precision,
    ask_depth_20            double precision,
    ask_depth_50            double precision,
    book_imbalance          double precision,
    bid_wall_size           double precision,
    ask_wall_size           double precision,
    volume_1h               double precision,
    buy_volume_1h           double precision,
    sell_volume_1h          double precision,
    avg_trade_size_1h       double precision,
    max_trade_size_1h       double precision,
    vwap_1h                 double precision,
    whale_volume_1h         double precision,
    whale_buy_volume_1h     double precision,
    whale_sell_volume_1h    double precision,
    whale_net_flow_1h       double precision,
    whale_buy_ratio_1h      double precision,
    time_since_whale_s      double precision,
    pct_volume_from_whales  double precision,
    hours_to_close          double precision,
    microprice              double precision,
    spread_ticks            double precision,
    bid_depth_total         double precision,
    ask_depth_total         double precision,
    return_1m               double precision,
    return_5m               double precision,
    return_15m              double precision,
    return_1h               double precision,
    realized_vol_1h         double precision,
    price_min_1h            double precision,
    price_max_1h            double precision,
    trade_imbalance_1h      double precision,
    seconds_since_trade     double precision,
    hours_since_open        double precision,
    token_sid               integer NOT NULL,
    best_bid                integer,                     -- micro-units
    best_ask                integer,
    last_trade_price        integer,
    bid_wall_price          integer,
    ask_wall_price          integer,
    tick_size               integer,
    trade_count_1h          integer,
    buy_count_1h            integer,
    sell_count_1h           integer,
    whale_count_1h          integer,
    tier                    smallint,
    bid_levels              smallint,
    ask_levels              smallint,
    day_of_week             smallint,
    hour_of_day             smallint,
    neg_risk                boolean
);
CREATE UNIQUE INDEX feature_samples_token_ts_key ON feature_samples (token_sid, ts DESC);
CREATE INDEX feature_samples_ts_idx ON feature_samples USING brin (ts);

--#if timescaledb
SELECT create_hypertable('feature_samples', by_range('ts', INTERVAL '1 day'), create_default_indexes => false);
ALTER TABLE feature_samples SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'ts DESC'
);
--#endif

-- Tokens first seen in a feature row since 0011 registered the others.
INSERT INTO token_keys (token_id, market_id)
SELECT token_id, (array_agg(market_id ORDER BY newest DESC, market_id))[1]
FROM (SELECT token_id, market_id, max(ts) AS newest FROM market_features GROUP BY 1, 2) seen
WHERE NOT EXISTS (SELECT 1 FROM token_keys k WHERE k.token_id = seen.token_id)
GROUP BY token_id
ORDER BY token_id;

INSERT INTO feature_samples (
    ts, token_sid, tier, best_bid, best_ask, last_trade_price, price_change_1d, price_change_1w,
    price_change_1m, volume_total, volume_24h, volume_1w, liquidity, bid_depth_5, bid_depth_10,
    bid_depth_20, bid_depth_50, ask_depth_5, ask_depth_10, ask_depth_20, ask_depth_50,
    bid_levels, ask_levels, book_imbalance, bid_wall_price, bid_wall_size, ask_wall_price,
    ask_wall_size, trade_count_1h, buy_count_1h, sell_count_1h, volume_1h, buy_volume_1h,
    sell_volume_1h, avg_trade_size_1h, max_trade_size_1h, vwap_1h, whale_count_1h,
    whale_volume_1h, whale_buy_volume_1h, whale_sell_volume_1h, whale_net_flow_1h,
    whale_buy_ratio_1h, time_since_whale_s, pct_volume_from_whales, hours_to_close, day_of_week,
    hour_of_day, microprice, tick_size, spread_ticks, bid_depth_total, ask_depth_total,
    return_1m, return_5m, return_15m, return_1h, realized_vol_1h, price_min_1h, price_max_1h,
    trade_imbalance_1h, seconds_since_trade, neg_risk, hours_since_open
)
SELECT
    f.ts, k.token_sid, f.tier, to_micros(f.best_bid), to_micros(f.best_ask),
    to_micros(f.last_trade_price), f.price_change_1d, f.price_change_1w, f.price_change_1m,
    f.volume_total, f.volume_24h, f.volume_1w, f.liquidity, f.bid_depth_5, f.bid_depth_10,
    f.bid_depth_20, f.bid_depth_50, f.ask_depth_5, f.ask_depth_10, f.ask_depth_20,
    f.ask_depth_50, f.bid_levels, f.ask_levels, f.book_imbalance, to_micros(f.bid_wall_price),
    f.bid_wall_size, to_micros(f.ask_wall_price), f.ask_wall_size, f.trade_count_1h,
    f.buy_count_1h, f.sell_count_1h, f.volume_1h, f.buy_volume_1h, f.sell_volume_1h,
    f.avg_trade_size_1h, f.max_trade_size_1h, f.vwap_1h, f.whale_count_1h, f.whale_volume_1h,
    f.whale_buy_volume_1h, f.whale_sell_volume_1h, f.whale_net_flow_1h, f.whale_buy_ratio_1h,
    f.time_since_whale_s, f.pct_volume_from_whales, f.hours_to_close, f.day_of_week,
    f.hour_of_day, f.microprice, to_micros(f.tick_size), f.spread_ticks, f.bid_depth_total,
    f.ask_depth_total, f.return_1m, f.return_5m, f.return_15m, f.return_1h, f.realized_vol_1h,
    f.price_min_1h, f.price_max_1h, f.trade_imbalance_1h, f.seconds_since_trade, f.neg_risk,
    f.hours_since_open
FROM market_features f JOIN token_keys k USING (token_id);

DROP TABLE market_features;

-- The old columns in the old order, then token_sid.
CREATE VIEW market_features AS
SELECT f.ts, k.token_id, k.market_id, f.tier,
       coalesce((f.best_bid::bigint + f.best_ask) / 2e6::float8,
                from_micros(f.last_trade_price)) AS price,
       from_micros(f.best_bid) AS best_bid,
       from_micros(f.best_ask) AS best_ask,
       from_micros(f.best_ask - f.best_bid) AS spread,
       from_micros(f.last_trade_price) AS last_trade_price,
       f.price_change_1d,
       f.price_change_1w,
       f.price_change_1m,
       f.volume_total,
       f.volume_24h,
       f.volume_1w,
       f.liquidity,
       f.bid_depth_5,
       f.bid_depth_10,
       f.bid_depth_20,
       f.bid_depth_50,
       f.ask_depth_5,
       f.ask_depth_10,
       f.ask_depth_20,
       f.ask_depth_50,
       f.bid_levels::integer AS bid_levels,
       f.ask_levels::integer AS ask_levels,
       f.book_imbalance,
       from_micros(f.bid_wall_price) AS bid_wall_price,
       f.bid_wall_size,
       from_micros(f.ask_wall_price) AS ask_wall_price,
       f.ask_wall_size,
       f.trade_count_1h,
       f.buy_count_1h,
       f.sell_count_1h,
       f.volume_1h,
       f.buy_volume_1h,
       f.sell_volume_1h,
       f.avg_trade_size_1h,
       f.max_trade_size_1h,
       f.vwap_1h,
       f.whale_count_1h,
       f.whale_volume_1h,
       f.whale_buy_volume_1h,
       f.whale_sell_volume_1h,
       f.whale_net_flow_1h,
       f.whale_buy_ratio_1h,
       f.time_since_whale_s,
       f.pct_volume_from_whales,
       f.hours_to_close,
       f.day_of_week,
       f.hour_of_day,
       (f.best_bid::bigint + f.best_ask) / 2e6::float8 AS midpoint,
       f.microprice,
       from_micros(f.tick_size) AS tick_size,
       f.spread_ticks,
       f.bid_depth_total,
       f.ask_depth_total,
       f.return_1m,
       f.return_5m,
       f.return_15m,
       f.return_1h,
       f.realized_vol_1h,
       f.price_min_1h,
       f.price_max_1h,
       f.trade_imbalance_1h,
       f.seconds_since_trade,
       f.neg_risk,
       f.hours_since_open,
       f.token_sid
FROM feature_samples f LEFT JOIN token_keys k USING (token_sid);
