-- Compact order-book snapshots, as 0011 did for prices, trades and deltas.
--
-- A snapshot keeps the top levels of each side (settings.orderbook.depth) and the statistics
-- of the whole book. Now:
--   * keyed by token_sid (token_keys); the market id comes from the registry;
--   * the levels of a side are packed into one bytea, per level a big-endian int4 price and
--     int8 size in micro-units (12 bytes a level; the JSONB arrays took about 37, and an int4[]
--     and an int8[] per side add about 40 bytes a side: measured in BENCHMARKS.md, "Footprint").
--     book_levels() turns them back into the JSONB [[price, size], ...] of before (the same
--     numbers; a whole number reads 100 where the JSON text said 100.0);
--   * the best bid and ask are the first levels, and the spread and midpoint follow from them
--     exactly in micro-units: none of the four is stored (the writer refuses a row where they
--     disagree with the levels);
--   * wall prices and sizes are a level's price and size: micro-units; level counts fit a
--     smallint (at most 9,999 price points per side at the finest tick); the source is a code
--     (source_name()); a 40-hex-digit book hash is its 20 bytes.
-- What the levels cannot reproduce stays a column: whole-book depth in USD, the depth within 5
-- to 50 levels, the imbalance and the level counts.

--#if timescaledb
SELECT delete_job(j.job_id)
FROM timescaledb_information.jobs j
WHERE j.hypertable_name = 'orderbook_snapshots';
--#endif

CREATE FUNCTION pack_levels(levels jsonb)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT coalesce(string_agg(int4send(to_micros((e.level ->> 0)::float8)::integer)
                               || int8send(to_micros((e.level ->> 1)::float8)),
                               ''::bytea ORDER BY e.n), ''::bytea)
    FROM jsonb_array_elements(levels) WITH ORDINALITY AS e(level, n)
$$;

CREATE FUNCTION book_levels(packed bytea)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_array(
               from_micros(('x' || encode(substr(packed, i, 4), 'hex'))::bit(32)::integer),
               from_micros(('x' || encode(substr(packed, i + 4, 8), 'hex'))::bit(64)::bigint))
               ORDER BY i), '[]'::jsonb)
    FROM generate_series(1, length(packed), 12) AS i
$$;

-- The price of the first (best) level, in micro-units; NULL for an empty side.
CREATE FUNCTION top_price(packed bytea)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT CASE WHEN length(packed) >= 12
                THEN ('x' || encode(substr(packed, 1, 4), 'hex'))::bit(32)::integer END
$$;

CREATE TABLE book_samples (
    ts                  timestamptz NOT NULL,
    book_ts             timestamptz,                 -- the venue's last-change time of the book
    bid_depth_usd       double precision,            -- whole book, price x size
    ask_depth_usd       double precision,
    bid_depth_5         double precision,            -- shares within the best N levels
    bid_depth_10        double precision,
    bid_depth_20        double precision,
    bid_depth_50        double precision,
    ask_depth_5         double precision,
    ask_depth_10        double precision,
    ask_depth_20        double precision,
    ask_depth_50        double precision,
    imbalance           double precision,            -- (bid - ask) / (bid + ask), top 10 levels
    bid_wall_size       bigint,                      -- micro-units
    ask_wall_size       bigint,
    token_sid           integer NOT NULL,
    bid_wall_price      integer,                     -- micro-units
    ask_wall_price      integer,
    source              smallint NOT NULL,           -- source_name()
    bid_levels          smallint,                    -- whole book
    ask_levels          smallint,
    bids                bytea NOT NULL,              -- top N, best first: see book_levels()
    asks                bytea NOT NULL,
    book_hash           bytea,                       -- the 20 bytes of a 40-hex-digit hash
    book_hash_text      text                         -- a hash spelt any other way, as given
);
CREATE UNIQUE INDEX book_samples_token_ts_key ON book_samples (token_sid, ts DESC);
CREATE INDEX book_samples_ts_idx ON book_samples USING brin (ts);

--#if timescaledb
SELECT create_hypertable('book_samples', by_range('ts', INTERVAL '1 day'), create_default_indexes => false);
ALTER TABLE book_samples SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'ts DESC'
);
--#endif

-- Tokens first seen in a book since 0011 registered the others.
INSERT INTO token_keys (token_id, market_id)
SELECT token_id, (array_agg(market_id ORDER BY newest DESC, market_id))[1]
FROM (SELECT token_id, market_id, max(ts) AS newest FROM orderbook_snapshots GROUP BY 1, 2) seen
WHERE NOT EXISTS (SELECT 1 FROM token_keys k WHERE k.token_id = seen.token_id)
GROUP BY token_id
ORDER BY token_id;

INSERT INTO book_samples
    (ts, book_ts, bid_depth_usd, ask_depth_usd, bid_depth_5, bid_depth_10, bid_depth_20,
     bid_depth_50, ask_depth_5, ask_depth_10, ask_depth_20, ask_depth_50, imbalance,
     bid_wall_size, ask_wall_size, token_sid, bid_wall_price, ask_wall_price, source,
     bid_levels, ask_levels, bids, asks, book_hash, book_hash_text)
SELECT o.ts, o.book_ts, o.bid_depth_usd, o.ask_depth_usd, o.bid_depth_5, o.bid_depth_10,
       o.bid_depth_20, o.bid_depth_50, o.ask_depth_5, o.ask_depth_10, o.ask_depth_20,
       o.ask_depth_50, o.imbalance, to_micros(o.bid_wall_size), to_micros(o.ask_wall_size),
       k.token_sid, to_micros(o.bid_wall_price), to_micros(o.ask_wall_price),
       source_code(o.source), o.bid_levels, o.ask_levels, pack_levels(o.bids),
       pack_levels(o.asks),
       CASE WHEN o.book_hash ~ '^[0-9a-f]{40}$' THEN decode(o.book_hash, 'hex') END,
       CASE WHEN o.book_hash !~ '^[0-9a-f]{40}$' THEN o.book_hash END
FROM orderbook_snapshots o JOIN token_keys k USING (token_id);

DROP TABLE orderbook_snapshots;

CREATE VIEW orderbook_snapshots AS
SELECT b.ts, k.token_id, k.market_id,
       source_name(b.source) AS source,
       book_levels(b.bids) AS bids,
       book_levels(b.asks) AS asks,
       from_micros(top_price(b.bids)) AS best_bid,
       from_micros(top_price(b.asks)) AS best_ask,
       from_micros(top_price(b.asks) - top_price(b.bids)) AS spread,
       (top_price(b.bids)::bigint + top_price(b.asks)) / 2e6::float8 AS midpoint,
       b.bid_depth_usd, b.ask_depth_usd,
       b.bid_levels::integer AS bid_levels,
       b.ask_levels::integer AS ask_levels,
       b.bid_depth_5, b.bid_depth_10, b.bid_depth_20, b.bid_depth_50,
       b.ask_depth_5, b.ask_depth_10, b.ask_depth_20, b.ask_depth_50,
       b.imbalance,
       from_micros(b.bid_wall_price) AS bid_wall_price,
       from_micros(b.bid_wall_size) AS bid_wall_size,
       from_micros(b.ask_wall_price) AS ask_wall_price,
       from_micros(b.ask_wall_size) AS ask_wall_size,
       coalesce(encode(b.book_hash, 'hex'), b.book_hash_text) AS book_hash,
       b.book_ts, b.token_sid
FROM book_samples b LEFT JOIN token_keys k USING (token_sid);
