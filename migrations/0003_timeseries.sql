-- Time series, keyed by token and time. Hypertables on TimescaleDB, plain tables otherwise.
-- Every unique index includes the time column (a hypertable requirement), and every writer
-- inserts with ON CONFLICT DO NOTHING on it, so replaying a batch never stores a row twice.

CREATE TABLE price_snapshots (
    ts                  timestamptz NOT NULL,        -- aligned to the collector cadence
    token_id            text NOT NULL,
    market_id           text NOT NULL,
    price               double precision,            -- midpoint, else last trade
    best_bid            double precision,
    best_ask            double precision,
    spread              double precision,
    last_trade_price    double precision,
    volume_24h          double precision,
    liquidity           double precision
);
CREATE UNIQUE INDEX price_snapshots_token_ts_key ON price_snapshots (token_id, ts DESC);

CREATE TABLE orderbook_snapshots (
    ts                  timestamptz NOT NULL,
    token_id            text NOT NULL,
    market_id           text NOT NULL,
    source              text NOT NULL,               -- rest | ws
    bids                jsonb NOT NULL,              -- top N, best first: [[price, size], ...]
    asks                jsonb NOT NULL,
    best_bid            double precision,
    best_ask            double precision,
    spread              double precision,
    midpoint            double precision,
    bid_depth_usd       double precision,            -- whole book, price x size
    ask_depth_usd       double precision,
    bid_levels          integer,
    ask_levels          integer,
    bid_depth_5         double precision,            -- shares within the best N levels
    bid_depth_10        double precision,
    bid_depth_20        double precision,
    bid_depth_50        double precision,
    ask_depth_5         double precision,
    ask_depth_10        double precision,
    ask_depth_20        double precision,
    ask_depth_50        double precision,
    imbalance           double precision,            -- (bid - ask) / (bid + ask), top 10 levels
    bid_wall_price      double precision,
    bid_wall_size       double precision,
    ask_wall_price      double precision,
    ask_wall_size       double precision,
    book_hash           text,
    book_ts             timestamptz                  -- the venue's last-change time of the book
);
CREATE UNIQUE INDEX orderbook_snapshots_token_ts_key ON orderbook_snapshots (token_id, ts DESC);

-- Polymarket publishes no fill id. trade_key is a 16-byte digest of what both the WebSocket
-- and the Data API report about a fill (see polyfarm.store.rows.trade_key), so a trade seen
-- live and again during a gap repair is stored once. ts is the fill time cut to whole
-- seconds (the Data API's precision); exchange_ms keeps the WebSocket's milliseconds.
CREATE TABLE trades (
    ts                  timestamptz NOT NULL,
    token_id            text NOT NULL,
    market_id           text NOT NULL,
    trade_key           bytea NOT NULL,
    price               double precision NOT NULL,
    size                double precision NOT NULL,   -- shares
    side                text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    fee_rate_bps        double precision,
    transaction_hash    text,
    source              text NOT NULL,               -- ws | data_api
    exchange_ms         bigint,
    received_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX trades_token_key_ts_key ON trades (token_id, trade_key, ts DESC);
CREATE INDEX trades_market_ts_idx ON trades (market_id, ts DESC);

CREATE TABLE book_deltas (
    ts                  timestamptz NOT NULL,        -- venue timestamp of the message
    token_id            text NOT NULL,
    market_id           text NOT NULL,
    seq                 integer NOT NULL,            -- position in the receive stream
    side                text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price               double precision NOT NULL,
    size                double precision NOT NULL,   -- new total at that level, 0 = removed
    best_bid            double precision,
    best_ask            double precision,
    received_at         timestamptz NOT NULL
);
CREATE UNIQUE INDEX book_deltas_token_ts_seq_key ON book_deltas (token_id, ts DESC, seq);

CREATE TABLE market_features (
    ts                      timestamptz NOT NULL,
    token_id                text NOT NULL,
    market_id               text NOT NULL,
    tier                    smallint,
    -- price (5)
    price                   double precision,
    best_bid                double precision,
    best_ask                double precision,
    spread                  double precision,
    last_trade_price        double precision,
    -- momentum from Gamma (3)
    price_change_1d         double precision,
    price_change_1w         double precision,
    price_change_1m         double precision,
    -- volume (4)
    volume_total            double precision,
    volume_24h              double precision,
    volume_1w               double precision,
    liquidity               double precision,
    -- depth (8)
    bid_depth_5             double precision,
    bid_depth_10            double precision,
    bid_depth_20            double precision,
    bid_depth_50            double precision,
    ask_depth_5             double precision,
    ask_depth_10            double precision,
    ask_depth_20            double precision,
    ask_depth_50            double precision,
    -- derived book (7)
    bid_levels              integer,
    ask_levels              integer,
    book_imbalance          double precision,
    bid_wall_price          double precision,
    bid_wall_size           double precision,
    ask_wall_price          double precision,
    ask_wall_size           double precision,
    -- trade flow, last hour (9)
    trade_count_1h          integer,
    buy_count_1h            integer,
    sell_count_1h           integer,
    volume_1h               double precision,
    buy_volume_1h           double precision,
    sell_volume_1h          double precision,
    avg_trade_size_1h       double precision,
    max_trade_size_1h       double precision,
    vwap_1h                 double precision,
    -- whales, last hour (8)
    whale_count_1h          integer,
    whale_volume_1h         double precision,
    whale_buy_volume_1h     double precision,
    whale_sell_volume_1h    double precision,
    whale_net_flow_1h       double precision,
    whale_buy_ratio_1h      double precision,
    time_since_whale_s      double precision,
    pct_volume_from_whales  double precision,
    -- context (3)
    hours_to_close          double precision,
    day_of_week             smallint,
    hour_of_day             smallint,
    -- beyond seed 004 (17)
    midpoint                double precision,
    microprice              double precision,
    tick_size               double precision,
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
    neg_risk                boolean,
    hours_since_open        double precision
);
CREATE UNIQUE INDEX market_features_token_ts_key ON market_features (token_id, ts DESC);

--#if timescaledb
SELECT create_hypertable('price_snapshots', by_range('ts', INTERVAL '1 day'));
SELECT create_hypertable('orderbook_snapshots', by_range('ts', INTERVAL '1 day'));
SELECT create_hypertable('trades', by_range('ts', INTERVAL '1 day'));
SELECT create_hypertable('book_deltas', by_range('ts', INTERVAL '6 hours'));
SELECT create_hypertable('market_features', by_range('ts', INTERVAL '1 day'));
--#else
-- Plain PostgreSQL: time-range scans across all tokens need a ts index of their own
-- (TimescaleDB gets this from chunk exclusion).
CREATE INDEX price_snapshots_ts_idx ON price_snapshots USING brin (ts);
CREATE INDEX orderbook_snapshots_ts_idx ON orderbook_snapshots USING brin (ts);
CREATE INDEX trades_ts_idx ON trades USING brin (ts);
CREATE INDEX book_deltas_ts_idx ON book_deltas USING brin (ts);
CREATE INDEX market_features_ts_idx ON market_features USING brin (ts);
--#endif
