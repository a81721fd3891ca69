-- An order book's imbalance and a feature row's book_imbalance follow from two columns beside
-- them: (bid_depth_10 - ask_depth_10) / (bid_depth_10 + ask_depth_10), none when that sum is
-- not positive. The producers compute them from those very doubles with those very operations
-- (polyfarm.markets.book_stats), so the views can compute them back to the bit. The writer now
-- stores the column only where it says something else (NULL otherwise: polyfarm.store.
-- compact_snapshots), and the views show the stored value where there is one. Rows stored before
-- keep theirs. Compressed, the two columns took 7.7 and 5.1 bytes a row (BENCHMARKS.md).

CREATE FUNCTION depth_imbalance(bid double precision, ask double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN bid + ask > 0 THEN (bid - ask) / (bid + ask) END $$;

-- Each view as it is (pg_get_viewdef), with that one column computed where it is not stored.
DO $$
DECLARE
    change record;
    definition text;
BEGIN
    FOR change IN
        SELECT * FROM (VALUES
            ('orderbook_snapshots', 'b.imbalance,',
             'coalesce(b.imbalance, depth_imbalance(b.bid_depth_10, b.ask_depth_10)) AS imbalance,'),
            ('market_features', 'f.book_imbalance,',
             'coalesce(f.book_imbalance, depth_imbalance(f.bid_depth_10, f.ask_depth_10)) AS book_imbalance,')
        ) AS c(view_name, stored, computed)
    LOOP
        definition := pg_get_viewdef(change.view_name::regclass);
        IF array_length(string_to_array(definition, change.stored), 1) <> 2 THEN
            RAISE EXCEPTION 'view % does not read % exactly once', change.view_name, change.stored;
        END IF;
        EXECUTE format('CREATE OR REPLACE VIEW %I AS %s', change.view_name,
                       replace(definition, change.stored, change.computed));
    END LOOP;
END $$;
