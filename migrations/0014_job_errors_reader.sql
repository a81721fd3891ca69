-- The latest error of each TimescaleDB job, for the API's reader role.
--
-- timescaledb_information.job_errors shows a job's errors only to members of the database
-- owner's role or of the job owner's; polyfarm_reader is neither, so /health/detailed could
-- say that a compression or refresh policy fails but not why. This function runs with its
-- owner's rights (the migrating role, which owns the database's jobs) and returns the newest
-- error of each job and nothing else. Its search_path is pinned so that a caller cannot slip
-- its own objects in. Plain PostgreSQL has no jobs and gets nothing.
--#if timescaledb
CREATE FUNCTION polyfarm_latest_job_errors()
RETURNS TABLE (job_id integer, finish_time timestamptz, sqlerrcode text, err_message text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT ON (e.job_id) e.job_id, e.finish_time, e.sqlerrcode, e.err_message
    FROM timescaledb_information.job_errors e
    ORDER BY e.job_id, e.start_time DESC
$$;

REVOKE ALL ON FUNCTION polyfarm_latest_job_errors() FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'polyfarm_reader') THEN
        GRANT EXECUTE ON FUNCTION polyfarm_latest_job_errors() TO polyfarm_reader;
    END IF;
END
$$;
--#endif
