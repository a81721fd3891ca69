-- TimescaleDB storage at venue scale: compressed continuous aggregates, and merged compressed
-- chunks for the raw time series, rebuilt once complete.
--
-- The aggregates are kept forever; at 40,000 tokens the 5-minute candles alone add 11.5
-- million rows a day. Their materializations are compressed like the raw tables: segment by
-- token_sid (a token's candles are read together; TimescaleDB 2.28's default for an aggregate
-- would be no segment at all, ordered by bucket and token), newest bucket first. When, and in
-- chunks of what length, is set at start-up (polyfarm.store.policies): past each aggregate's
-- refresh window, so that a refresh does not rewrite compressed chunks.
--
-- The raw tables take writes in short chunks (settings.chunks) and their compressed chunks
-- are merged up to chunks.compressed_hours (compress_chunk_time_interval). ALTER TABLE takes
-- no parameters, so the policies set that through this function, which formats the statement
-- with the interval as a literal and the table as a regclass.
--
-- TimescaleDB merges a chunk into the compressed one before it only when both were compressed
-- with the hypertable's settings. For trade_fills and book_changes it adds, by default, a
-- bloom filter on the unique index's (ts, trade_key) and (ts, seq) to every compressed chunk
-- (it lets an insert into a compressed chunk check the unique key without decompressing every
-- batch of the token), which the hypertable's settings do not list: no chunk of theirs ever
-- merged. Listing the same filters in the settings keeps them and lets the chunks merge.
--#if timescaledb
ALTER TABLE trade_fills SET (timescaledb.compress_index = 'bloom(ts, trade_key)');
ALTER TABLE book_changes SET (timescaledb.compress_index = 'bloom(ts, seq)');

ALTER MATERIALIZED VIEW price_candles_5m SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'bucket DESC'
);
ALTER MATERIALIZED VIEW price_candles_15m SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'bucket DESC'
);
ALTER MATERIALIZED VIEW price_candles_1h SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'bucket DESC'
);
ALTER MATERIALIZED VIEW price_candles_4h SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'bucket DESC'
);
ALTER MATERIALIZED VIEW price_candles_1d SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'bucket DESC'
);
ALTER MATERIALIZED VIEW trade_flow_1h SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'token_sid',
    timescaledb.compress_orderby = 'bucket DESC'
);

CREATE FUNCTION polyfarm_set_compressed_chunk_interval(hypertable regclass, merged interval)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s SET (timescaledb.compress_chunk_time_interval = %L)',
                   hypertable, merged);
END
$$;

-- A merged chunk holds one compressed batch per token for every short chunk merged into it: a
-- token's 120 price points of two hours, where a day's 1,440 would fill batches of up to 1,000
-- rows. Measured at venue shape (BENCHMARKS.md, "Compression at production segment sizes"),
-- 2-hour batches take 1.8 times the bytes of a day's for price points, 1.4 for order books
-- and 2.0 for features. Once a merged chunk is complete (it spans compress_chunk_time_interval)
-- this job compresses it again as a whole (rebuild_columnstore: segment by segment, in memory;
-- writes to that chunk wait, reads do not), which gives it a day's batches. It rebuilds only
-- chunks that hold more batches than their rows need, among those ending within the lookback
-- (config 'lookback', 3 days by default): a chunk rebuilt, or compressed in one piece, is left
-- alone, and so are a database's older chunks.
CREATE PROCEDURE polyfarm_rebuild_merged_chunks(job_id integer, config jsonb)
LANGUAGE plpgsql
AS $$
DECLARE
    lookback interval := coalesce((config ->> 'lookback')::interval, INTERVAL '3 days');
    batch_rows integer := current_setting('timescaledb.compression_batch_size_limit')::integer;
    target record;
    too_many boolean;
BEGIN
    FOR target IN
        SELECT format('%I.%I', ch.schema_name, ch.table_name) AS chunk,
               format('%I.%I', cc.schema_name, cc.table_name) AS compressed,
               coalesce(s.segmentby, '()') AS segmentby
        FROM timescaledb_information.hypertable_compression_settings s
        JOIN _timescaledb_catalog.hypertable h
          ON format('%I.%I', h.schema_name, h.table_name)::regclass = s.hypertable
        JOIN _timescaledb_catalog.chunk ch ON ch.hypertable_id = h.id
        JOIN _timescaledb_catalog.chunk cc ON cc.id = ch.compressed_chunk_id
        JOIN timescaledb_information.chunks i
          ON i.chunk_schema = ch.schema_name AND i.chunk_name = ch.table_name
        WHERE s.compress_interval_length IS NOT NULL
          AND i.range_end - i.range_start >= s.compress_interval_length::interval
          AND i.range_end > now() - lookback
        ORDER BY i.range_start
    LOOP
        EXECUTE format(
            'SELECT sum(batches) > sum(ceil(n / %s::numeric)) '
            'FROM (SELECT count(*) AS batches, sum(_ts_meta_count) AS n FROM %s GROUP BY %s) s',
            batch_rows, target.compressed, target.segmentby)
        INTO too_many;
        IF too_many THEN
            CALL _timescaledb_functions.rebuild_columnstore(target.chunk::regclass);
            COMMIT;
        END IF;
    END LOOP;
END
$$;

SELECT add_job('polyfarm_rebuild_merged_chunks', INTERVAL '1 hour',
               config => '{"lookback": "3 days"}'::jsonb);
--#endif
