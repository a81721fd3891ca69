-- Four features move with the clock alone: hours_to_close and hours_since_open count hours
-- from the market's close and open, seconds_since_trade and time_since_whale_s seconds since
-- the last trade and the last whale trade. As doubles they change on every row and compressed
-- to about 6 bytes each (BENCHMARKS.md, "Compression at production segment sizes"); the
-- instants they count from stay the same row after row. The writer now stores the instant
-- instead (polyfarm.store.clock_anchors), and only where the view computes the feature back
-- from it to the bit; else the value itself, as before. Rows stored before keep their values.
--
-- Exactness: the producers compute (end - ts).total_seconds() / 3600.0 and ts.timestamp() -
-- last, where a datetime difference is a whole number of microseconds and total_seconds() and
-- timestamp() divide it by 10^6 correctly rounded. extract(epoch ...) is numeric, exact to the
-- microsecond (PostgreSQL 14 and later), and numeric to float8 is correctly rounded; the rest
-- are the same IEEE operations in the same order.

DO $$
BEGIN
    IF current_setting('server_version_num')::integer < 140000 THEN
        RAISE EXCEPTION 'clock anchors need PostgreSQL 14 or later (extract returns numeric)';
    END IF;
END $$;

-- One column a statement: TimescaleDB adds columns to a compressed hypertable one at a time.
ALTER TABLE feature_samples ADD COLUMN close_at timestamptz;        -- hours_to_close's instant
ALTER TABLE feature_samples ADD COLUMN open_at timestamptz;         -- hours_since_open's
ALTER TABLE feature_samples ADD COLUMN last_trade_at double precision;  -- epoch seconds
ALTER TABLE feature_samples ADD COLUMN last_whale_at double precision;

-- Hours from ``since`` to ``until``: tiers.hours_to_close, to the bit.
CREATE FUNCTION hours_between(since timestamptz, until timestamptz)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT (extract(epoch FROM until) - extract(epoch FROM since))::float8 / 3600::float8 $$;

-- Seconds from an instant in epoch seconds to ``ts``: ts.timestamp() - anchor, to the bit.
CREATE FUNCTION seconds_since(anchor double precision, ts timestamptz)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT extract(epoch FROM ts)::float8 - anchor $$;

-- The view as it is (pg_get_viewdef), each clock feature computed where it is not stored.
DO $$
DECLARE
    change record;
    definition text := pg_get_viewdef('market_features'::regclass);
BEGIN
    FOR change IN
        SELECT * FROM (VALUES
            ('f.hours_to_close,',
             'coalesce(f.hours_to_close, hours_between(f.ts, f.close_at)) AS hours_to_close,'),
            ('f.hours_since_open,',
             'coalesce(f.hours_since_open, hours_between(f.open_at, f.ts)) AS hours_since_open,'),
            ('f.seconds_since_trade,',
             'coalesce(f.seconds_since_trade, seconds_since(f.last_trade_at, f.ts)) AS seconds_since_trade,'),
            ('f.time_since_whale_s,',
             'coalesce(f.time_since_whale_s, seconds_since(f.last_whale_at, f.ts)) AS time_since_whale_s,')
        ) AS c(stored, computed)
    LOOP
        IF array_length(string_to_array(definition, change.stored), 1) <> 2 THEN
            RAISE EXCEPTION 'market_features does not read % exactly once', change.stored;
        END IF;
        definition := replace(definition, change.stored, change.computed);
    END LOOP;
    EXECUTE format('CREATE OR REPLACE VIEW market_features AS %s', definition);
END $$;
