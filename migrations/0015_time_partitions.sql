-- Plain PostgreSQL: the five time series become declarative range partitions on ts.
--
-- Retention used to DELETE old rows every few minutes, which leaves dead tuples for vacuum and
-- keeps every index as large as the whole retention window (price_points' unique index alone
-- grows by about a GiB a day at venue rates, so inserts soon miss the cache). With one
-- partition per UTC day (polyfarm.store.partitions names, makes and drops them), retention
-- drops a whole day at once and the indexes written to are one day's.
--
-- Each table T becomes a partitioned table of the same name, columns, defaults, constraints
-- and index names, with:
--   * T_legacy: the table as it was, attached as one partition FROM (MINVALUE) TO the UTC
--     midnight after its newest row (or after now, if later). No row is copied and no index
--     rebuilt: the table and its indexes are attached as they are, and PostgreSQL only reads
--     the table once to check the bound. The price: this one partition is still expired row
--     by row (DELETE) until the last of its rows is past retention, then dropped whole; until
--     then its indexes stay as large as before. Copying the rows into day partitions instead
--     would rewrite the whole retention window and rebuild every index inside this migration.
--     An empty table is dropped, not attached.
--   * T_default: the DEFAULT partition, for a row no day partition takes (a late or
--     backfilled row). The partition upkeep moves such rows into their day's own partition.
-- Day partitions themselves are made by the upkeep, at start-up before any writer and from
-- the maintenance task, so that this file does not depend on the settings.
--
-- Views bind to the table's OID, not its name. The views straight over the tables are
-- replaced in place (same definition, now reading the new parent), which keeps their OIDs,
-- privileges and anything built on them. The materialized views (and the views over them)
-- are dropped and made again from their own definitions, with their indexes, owner and
-- privileges, and refreshed here if they had been, so that every aggregate reads as before.
--
-- TimescaleDB: the tables are hypertables already; nothing changes there.

--#if plain
-- -- what is rebuilt, as it stands now ----------------------------------------------------

-- position: creation order; in_place: a view over a table, replaced rather than dropped.
CREATE TEMP TABLE rebound_views ON COMMIT DROP AS
SELECT v.position, v.in_place, c.oid::regclass::text AS name, c.relkind AS kind,
       c.relkind = 'm' AND c.relispopulated AS populated, c.relowner AS owner, c.relacl AS acl,
       regexp_replace(pg_get_viewdef(c.oid), ';\s*$', '') AS definition,
       ARRAY(SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
             WHERE i.indrelid = c.oid ORDER BY i.indexrelid) AS indexes
FROM (
    SELECT name, position, position <= 6 AS in_place
    FROM unnest(ARRAY[
        'price_snapshots', 'trades', 'book_deltas', 'orderbook_snapshots', 'market_features',
        'candles_1m',
        'price_candles_5m', 'price_candles_15m', 'price_candles_1h', 'price_candles_4h',
        'price_candles_1d', 'trade_flow_1h',
        'candles_5m', 'candles_15m', 'candles_1h', 'candles_4h', 'candles_1d', 'trade_volume_1h'
    ]) WITH ORDINALITY AS names(name, position)
) v
JOIN pg_class c ON c.oid = v.name::regclass;

-- Ownership and privileges of a rebuilt relation, as they were on another.
CREATE FUNCTION pg_temp.polyfarm_restore_access(target regclass, owner oid, acl aclitem[])
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    kind "char" := (SELECT relkind FROM pg_class WHERE oid = target);
    item record;
BEGIN
    IF owner <> (SELECT relowner FROM pg_class WHERE oid = target) THEN
        EXECUTE format('ALTER %s %s OWNER TO %s',
                       CASE kind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                 ELSE 'TABLE' END,
                       target, owner::regrole);
    END IF;
    FOR item IN SELECT * FROM aclexplode(acl) a WHERE a.grantee <> owner LOOP
        EXECUTE format('GRANT %s ON %s TO %s%s', item.privilege_type, target,
                       CASE item.grantee WHEN 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END,
                       CASE WHEN item.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$$;

DO $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT * FROM rebound_views WHERE NOT in_place ORDER BY position DESC LOOP
        EXECUTE format('DROP %s %s', CASE v.kind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END,
                       v.name);
    END LOOP;
END
$$;

-- -- the partitioned tables -----------------------------------------------------------------
-- Same columns in the same order, defaults, NOT NULL and CHECK constraints (LIKE), and the
-- index names of before: on the parent, so that every partition gets them.

ALTER TABLE price_points RENAME TO price_points_legacy;
ALTER INDEX price_points_token_ts_key RENAME TO price_points_legacy_token_ts_key;
ALTER INDEX price_points_ts_idx RENAME TO price_points_legacy_ts_idx;
CREATE TABLE price_points (LIKE price_points_legacy INCLUDING ALL EXCLUDING INDEXES)
    PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX price_points_token_ts_key ON price_points (token_sid, ts DESC);
CREATE INDEX price_points_ts_idx ON price_points USING brin (ts);

ALTER TABLE trade_fills RENAME TO trade_fills_legacy;
ALTER INDEX trade_fills_token_ts_key RENAME TO trade_fills_legacy_token_ts_key;
ALTER INDEX trade_fills_ts_idx RENAME TO trade_fills_legacy_ts_idx;
CREATE TABLE trade_fills (LIKE trade_fills_legacy INCLUDING ALL EXCLUDING INDEXES)
    PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX trade_fills_token_ts_key ON trade_fills (token_sid, ts DESC, trade_key);
CREATE INDEX trade_fills_ts_idx ON trade_fills USING brin (ts);

ALTER TABLE book_changes RENAME TO book_changes_legacy;
ALTER INDEX book_changes_token_ts_seq_key RENAME TO book_changes_legacy_token_ts_seq_key;
ALTER INDEX book_changes_ts_idx RENAME TO book_changes_legacy_ts_idx;
CREATE TABLE book_changes (LIKE book_changes_legacy INCLUDING ALL EXCLUDING INDEXES)
    PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX book_changes_token_ts_seq_key ON book_changes (token_sid, ts DESC, seq);
CREATE INDEX book_changes_ts_idx ON book_changes USING brin (ts);

ALTER TABLE book_samples RENAME TO book_samples_legacy;
ALTER INDEX book_samples_token_ts_key RENAME TO book_samples_legacy_token_ts_key;
ALTER INDEX book_samples_ts_idx RENAME TO book_samples_legacy_ts_idx;
CREATE TABLE book_samples (LIKE book_samples_legacy INCLUDING ALL EXCLUDING INDEXES)
    PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX book_samples_token_ts_key ON book_samples (token_sid, ts DESC);
CREATE INDEX book_samples_ts_idx ON book_samples USING brin (ts);

ALTER TABLE feature_samples RENAME TO feature_samples_legacy;
ALTER INDEX feature_samples_token_ts_key RENAME TO feature_samples_legacy_token_ts_key;
ALTER INDEX feature_samples_ts_idx RENAME TO feature_samples_legacy_ts_idx;
CREATE TABLE feature_samples (LIKE feature_samples_legacy INCLUDING ALL EXCLUDING INDEXES)
    PARTITION BY RANGE (ts);
CREATE UNIQUE INDEX feature_samples_token_ts_key ON feature_samples (token_sid, ts DESC);
CREATE INDEX feature_samples_ts_idx ON feature_samples USING brin (ts);

-- The views over the tables, replaced by their own definitions: the names they read now
-- resolve to the new parents, and the legacy tables have no view left on them.
DO $$
DECLARE
    v record;
BEGIN
    FOR v IN SELECT * FROM rebound_views WHERE in_place ORDER BY position LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %s AS %s', v.name, v.definition);
    END LOOP;
END
$$;

-- The rows stored so far: the old table becomes the legacy partition (or goes, when empty);
-- then the DEFAULT partition. The newest row of each token is one probe of the (token_sid,
-- ts DESC, ...) index, so the bound is found without reading the table (ATTACH reads it once
-- to check the bound; a row the probe missed fails the migration rather than being lost).
DO $$
DECLARE
    parent text;
    legacy text;
    old record;
    populated boolean;
    newest timestamptz;
    bound timestamptz;
BEGIN
    FOREACH parent IN ARRAY ARRAY['price_points', 'trade_fills', 'book_changes', 'book_samples',
                                  'feature_samples'] LOOP
        legacy := parent || '_legacy';
        SELECT relowner AS owner, relacl AS acl INTO STRICT old
        FROM pg_class WHERE oid = legacy::regclass;
        PERFORM pg_temp.polyfarm_restore_access(parent::regclass, old.owner, old.acl);
        EXECUTE format('SELECT EXISTS (SELECT FROM %I)', legacy) INTO STRICT populated;
        IF populated THEN
            EXECUTE format(
                'SELECT max(n.ts) FROM token_keys k CROSS JOIN LATERAL '
                '(SELECT ts FROM %I WHERE token_sid = k.token_sid ORDER BY ts DESC LIMIT 1) n',
                legacy) INTO STRICT newest;
            bound := (date_trunc('day', greatest(now(), newest) AT TIME ZONE 'UTC')
                      + INTERVAL '1 day') AT TIME ZONE 'UTC';
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
                           parent, legacy, bound);
        ELSE
            EXECUTE format('DROP TABLE %I', legacy);
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', parent || '_default', parent);
        PERFORM pg_temp.polyfarm_restore_access((parent || '_default')::regclass, old.owner,
                                                old.acl);
    END LOOP;
END
$$;

-- -- the aggregates, made again -------------------------------------------------------------
-- In creation order (each candle aggregate reads the one before it), empty, with their
-- indexes; then filled, if they had been, as the maintenance task's first refresh would.
DO $$
DECLARE
    v record;
    index_definition text;
BEGIN
    FOR v IN SELECT * FROM rebound_views WHERE NOT in_place ORDER BY position LOOP
        IF v.kind = 'm' THEN
            EXECUTE format('CREATE MATERIALIZED VIEW %s AS %s WITH NO DATA', v.name,
                           v.definition);
        ELSE
            EXECUTE format('CREATE VIEW %s AS %s', v.name, v.definition);
        END IF;
        FOREACH index_definition IN ARRAY v.indexes LOOP
            EXECUTE index_definition;
        END LOOP;
        PERFORM pg_temp.polyfarm_restore_access(v.name::regclass, v.owner, v.acl);
    END LOOP;
    FOR v IN SELECT * FROM rebound_views WHERE populated ORDER BY position LOOP
        EXECUTE format('REFRESH MATERIALIZED VIEW %s', v.name);
    END LOOP;
END
$$;

DROP FUNCTION pg_temp.polyfarm_restore_access(regclass, oid, aclitem[]);
--#endif
