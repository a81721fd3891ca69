-- An order book's depth within its best N levels (N = 5, 10, 20, 50) is the sum of those
-- levels' sizes. Since this migration the producers compute it exactly, in micro-units
-- (polyfarm.markets.book_stats.depth: sizes have at most six decimals), and the levels stored
-- beside it (the top settings.orderbook.depth of each side, 5 by default) are the same micro-units.
-- So where the stored levels reach N, or hold the whole side, the view can compute the depth
-- back: always the 5-level depths at the default setting, every depth of a thin side. The
-- writer stores a depth only where the view would not give it back to the bit (NULL otherwise:
-- polyfarm.store.compact_snapshots.stored_depths), and validation refuses a missing depth.
-- Rows stored before keep theirs (their float sums are off by an ulp now and then). Compressed,
-- a depth column took about 5.5 bytes a row (BENCHMARKS.md).

-- Shares within the best ``levels`` levels of a packed side (book_levels()' layout): the sum of
-- the sizes in micro-units, rounded to a double, over 10^6: Python's float(total) / 1e6.
-- PL/pgSQL reading the bytes: four times the speed of decoding each size through hex text.
CREATE FUNCTION levels_depth(packed bytea, levels integer)
RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT
AS $$
DECLARE
    total bigint := 0;
    size bigint;
BEGIN
    FOR level IN 0 .. least(levels, length(packed) / 12) - 1 LOOP
        size := 0;
        FOR byte IN 12 * level + 4 .. 12 * level + 11 LOOP  -- the int8 after the int4 price
            size := (size << 8) | get_byte(packed, byte);
        END LOOP;
        total := total + size;
    END LOOP;
    RETURN total::float8 / 1e6::float8;
END
$$;

-- The view as it is (pg_get_viewdef), each depth computed where it is not stored: in its own
-- column and in the imbalance that 0021 computes from the 10-level depths.
DO $$
DECLARE
    side text;
    levels integer;
    stored text;
    computed text;
    imbalance constant text := 'depth_imbalance(b.bid_depth_10, b.ask_depth_10)';
    definition text := pg_get_viewdef('orderbook_snapshots'::regclass);
BEGIN
    -- The imbalance reads b.bid_depth_10, as the column does: set it aside while the columns
    -- are replaced, so that each of them is found exactly once.
    IF array_length(string_to_array(definition, imbalance), 1) <> 2 THEN
        RAISE EXCEPTION 'orderbook_snapshots does not compute % exactly once', imbalance;
    END IF;
    definition := replace(definition, imbalance, '/*imbalance*/');
    FOREACH side IN ARRAY ARRAY['bid', 'ask'] LOOP
        FOREACH levels IN ARRAY ARRAY[5, 10, 20, 50] LOOP
            stored := format('b.%s_depth_%s,', side, levels);
            computed := format('coalesce(b.%1$s_depth_%2$s, levels_depth(b.%1$ss, %2$s)) AS %1$s_depth_%2$s,',
                               side, levels);
            IF array_length(string_to_array(definition, stored), 1) <> 2 THEN
                RAISE EXCEPTION 'orderbook_snapshots does not read % exactly once', stored;
            END IF;
            definition := replace(definition, stored, computed);
        END LOOP;
    END LOOP;
    definition := replace(
        definition, '/*imbalance*/',
        'depth_imbalance(coalesce(b.bid_depth_10, levels_depth(b.bids, 10)),'
            || ' coalesce(b.ask_depth_10, levels_depth(b.asks, 10)))');
    EXECUTE format('CREATE OR REPLACE VIEW orderbook_snapshots AS %s', definition);
END $$;
