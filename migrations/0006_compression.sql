-- Columnar compression settings (TimescaleDB only). When chunks get compressed, and when raw
-- data is dropped, is set from the retention settings at migrate time
-- (polyfarm.store.policies), so changing the config needs no new migration.
--#if timescaledb
ALTER TABLE price_snapshots SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_id',
    timescaledb.compress_orderby = 'ts DESC'
);
ALTER TABLE orderbook_snapshots SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_id',
    timescaledb.compress_orderby = 'ts DESC'
);
ALTER TABLE trades SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_id',
    timescaledb.compress_orderby = 'ts DESC, trade_key'
);
ALTER TABLE book_deltas SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_id',
    timescaledb.compress_orderby = 'ts DESC, seq'
);
ALTER TABLE market_features SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_id',
    timescaledb.compress_orderby = 'ts DESC'
);
--#endif
