-- One kind of time index on both flavours: BRIN on ts. create_hypertable (0003) also gave
-- every hypertable a B-tree on (ts DESC), which plain PostgreSQL never had and no query needs:
-- per-token reads use the (token_id, ts DESC) unique index, time ranges use chunk exclusion and
-- the BRIN index (rows arrive in time order). Keeping that B-tree up to date cost about 15 % of
-- the ingest rate of price snapshots (BENCHMARKS.md, "Ingest").
--#if timescaledb
DROP INDEX IF EXISTS price_snapshots_ts_idx;
DROP INDEX IF EXISTS orderbook_snapshots_ts_idx;
DROP INDEX IF EXISTS trades_ts_idx;
DROP INDEX IF EXISTS book_deltas_ts_idx;
DROP INDEX IF EXISTS market_features_ts_idx;
CREATE INDEX price_snapshots_ts_idx ON price_snapshots USING brin (ts);
CREATE INDEX orderbook_snapshots_ts_idx ON orderbook_snapshots USING brin (ts);
CREATE INDEX trades_ts_idx ON trades USING brin (ts);
CREATE INDEX book_deltas_ts_idx ON book_deltas USING brin (ts);
CREATE INDEX market_features_ts_idx ON market_features USING brin (ts);
--#endif
