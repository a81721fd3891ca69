-- Functions that TimescaleDB provides and plain PostgreSQL lacks, so that later files can use
-- one body for both flavours. On TimescaleDB this file does nothing.
--#if plain
-- Same alignment as TimescaleDB's time_bucket for timestamptz: buckets counted from
-- 2000-01-03 00:00 UTC (a Monday), which puts every minute/hour/day bucket on the clock.
CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT date_bin(bucket_width, ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') $$;

-- The helpers pin their search_path: REFRESH MATERIALIZED VIEW runs with a restricted one
-- (PostgreSQL 17+), under which the state type would not be found.
CREATE TYPE polyfarm_value_at AS (value double precision, at timestamptz);

CREATE FUNCTION polyfarm_first_step(state polyfarm_value_at, value double precision, at timestamptz)
RETURNS polyfarm_value_at
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$
    SELECT CASE
        WHEN at IS NULL THEN state
        WHEN state IS NULL OR at < state.at THEN ROW(value, at)::polyfarm_value_at
        ELSE state
    END
$$;

CREATE FUNCTION polyfarm_last_step(state polyfarm_value_at, value double precision, at timestamptz)
RETURNS polyfarm_value_at
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$
    SELECT CASE
        WHEN at IS NULL THEN state
        WHEN state IS NULL OR at >= state.at THEN ROW(value, at)::polyfarm_value_at
        ELSE state
    END
$$;

CREATE FUNCTION polyfarm_first_combine(a polyfarm_value_at, b polyfarm_value_at)
RETURNS polyfarm_value_at
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$ SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a WHEN b.at < a.at THEN b ELSE a END $$;

CREATE FUNCTION polyfarm_last_combine(a polyfarm_value_at, b polyfarm_value_at)
RETURNS polyfarm_value_at
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$ SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a WHEN b.at >= a.at THEN b ELSE a END $$;

CREATE FUNCTION polyfarm_value_of(state polyfarm_value_at)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$ SELECT (state).value $$;

CREATE AGGREGATE first(double precision, timestamptz) (
    SFUNC = polyfarm_first_step, STYPE = polyfarm_value_at,
    COMBINEFUNC = polyfarm_first_combine, FINALFUNC = polyfarm_value_of, PARALLEL = SAFE
);

CREATE AGGREGATE last(double precision, timestamptz) (
    SFUNC = polyfarm_last_step, STYPE = polyfarm_value_at,
    COMBINEFUNC = polyfarm_last_combine, FINALFUNC = polyfarm_value_of, PARALLEL = SAFE
);
--#endif
